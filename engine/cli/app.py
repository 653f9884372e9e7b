"""The ``conveyor`` command group: the global options and how commands open the database."""

from __future__ import annotations

import logging
import os
from typing import Any

import click

from engine.cli.errors import RedactSecrets, safe
from storage.db import database_url


def open_conveyor(ctx: click.Context, **kwargs: Any):  # noqa: ANN202
    from engine.core.conveyor import Conveyor
    from engine.outbox.providers import provider_from_url

    provider = provider_from_url(os.environ.get("CONVEYOR_PROVIDER"))
    return Conveyor(ctx.obj["db"], provider=provider, **kwargs)


def open_read_only(ctx: click.Context):  # noqa: ANN202
    """For commands that only read: no writes, no migration when current; a read-only SQLite file works."""
    from engine.core.reader import open_reader

    return open_reader(ctx.obj["db"])


class _SafeGroup(click.Group):
    """Click's own usage errors ("No such command 'postgresql://u:pw@…'") are shown with secrets masked too."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.ClickException as exc:
            exc.message = safe(exc.message)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            exc.message = safe(exc.message)
            raise


@click.group(cls=_SafeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="CONVEYOR_DB", default=None, metavar="URL",
              help="SQLAlchemy database URL (default: $CONVEYOR_DB or sqlite:///conveyor.db).")
@click.option("-v", "--verbose", is_flag=True, help="Log what the engine does.")
@click.pass_context
def main(ctx: click.Context, db: str | None, verbose: bool) -> None:
    """Conveyor: sales-funnel automation on business-rules."""
    ctx.ensure_object(dict)
    ctx.obj["db"] = database_url(db)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)



def use_db(ctx: click.Context, db: str | None) -> None:
    """``conveyor engine --db URL`` reads as well as ``conveyor --db URL engine``."""
    if db:
        ctx.obj["db"] = database_url(db)

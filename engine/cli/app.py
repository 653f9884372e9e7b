"""The ``conveyor`` command group: the global options and how commands open the database."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import click

from engine.cli.errors import RedactSecrets, safe
from storage.db import database_url

if TYPE_CHECKING:
    from engine.core.access import Actor
    from engine.core.conveyor import Conveyor
    from engine.core.reader import ReadOnlyConveyor
    from engine.outbox.channels import ChannelRouter


def open_conveyor(ctx: click.Context, **kwargs: Any) -> Conveyor:
    from engine.core.conveyor import Conveyor

    conveyor = Conveyor(ctx.obj["db"], provider=channels(ctx), **kwargs)
    config = ctx.find_root().obj.get("loaded_config")
    if config is not None:
        conveyor.digests.configure(config.digest)  # [digest]: the hour of the managers' digest
    return conveyor


def cli_actor() -> Actor:
    """Who a change from the command line is by, as the audit trail names it: ``cli:<login>``."""
    import getpass

    from engine.core.access import Actor, ActorKind, Role  # imported late: the CLI starts fast

    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return Actor(ActorKind.SYSTEM, f"cli:{login}"[:100], Role.OWNER)


def channels(ctx: click.Context) -> ChannelRouter:
    """The channel router of this run: ``--config`` / ``CONVEYOR_CONFIG``, else ``CONVEYOR_PROVIDER``'s
    webhook for every channel, else recording only. Read once per run; a bad file fails here."""
    from engine.config import load_config
    from engine.outbox.channels import channels_from_config

    root = ctx.find_root().obj
    if "channels" not in root:
        path = root.get("config")
        config = load_config(path) if path else None
        root["loaded_config"] = config
        root["channels"] = channels_from_config(
            config, legacy_url=os.environ.get("CONVEYOR_PROVIDER")
        )
    router: ChannelRouter = root["channels"]
    return router


def open_read_only(ctx: click.Context) -> ReadOnlyConveyor:
    """For commands that only read: no writes, no migration when current; a read-only SQLite file works."""
    from engine.core.reader import open_reader

    return open_reader(ctx.obj["db"])


class _SafeGroup(click.Group):
    """Click's own usage errors ("No such command 'postgresql://u:pw@…'") are shown with secrets masked too."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.ClickException as exc:
            exc.message = safe(exc.message)  # type: ignore[misc]  # click types it Final; show() reads it
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            exc.message = safe(exc.message)  # type: ignore[misc]  # click types it Final; show() reads it
            raise


@click.group(cls=_SafeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="CONVEYOR_DB",
    default=None,
    metavar="URL",
    help="SQLAlchemy database URL (default: $CONVEYOR_DB or sqlite:///conveyor.db).",
)
@click.option(
    "--config",
    "config",
    envvar="CONVEYOR_CONFIG",
    default=None,
    metavar="FILE",
    help="conveyor.toml: which provider carries each message channel (default: $CONVEYOR_CONFIG;"
    " without one, messages are only recorded).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what the engine does.")
@click.pass_context
def main(ctx: click.Context, db: str | None, config: str | None, verbose: bool) -> None:
    """Conveyor: sales-funnel automation on business-rules."""
    ctx.ensure_object(dict)
    ctx.obj["db"] = database_url(db)
    if config:
        # Children (demo's engine, the builder) read the same file: it reaches them in the environment.
        config = os.path.abspath(config)
        os.environ["CONVEYOR_CONFIG"] = config
    ctx.obj["config"] = config
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def use_db(ctx: click.Context, db: str | None) -> None:
    """``conveyor engine --db URL`` reads as well as ``conveyor --db URL engine``."""
    if db:
        ctx.obj["db"] = database_url(db)

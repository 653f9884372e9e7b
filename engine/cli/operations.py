"""Operating the service: ``engine``, ``status`` and ``actions``."""

from __future__ import annotations

import logging

import click

from engine.cli.app import channels, cli_actor, main, open_conveyor, open_read_only, use_db
from engine.cli.errors import friendly
from engine.printable import printable


@main.command()
@click.option(
    "--tick-seconds",
    type=float,
    default=60,
    show_default=True,
    help="How often time-based rules are evaluated.",
)
@click.option(
    "--workers", type=int, default=4, show_default=True, help="Messages sent in parallel."
)
@click.option(
    "--lease-seconds",
    type=float,
    default=120,
    show_default=True,
    help="How long a message being sent stays claimed before another engine may reconcile it.",
)
@click.option(
    "--retry-base-seconds",
    type=float,
    default=30,
    show_default=True,
    help="First retry delay; it doubles on each attempt (with jitter), up to one hour.",
)
@click.option(
    "--max-attempts",
    type=int,
    default=6,
    show_default=True,
    help="Attempts before an action is given up as dead.",
)
@click.option(
    "--db", "db", default=None, metavar="URL", help="Database URL (same as the global --db)."
)
@click.pass_context
@friendly
def engine(
    ctx: click.Context,
    tick_seconds: float,
    workers: int,
    lease_seconds: float,
    retry_base_seconds: float,
    max_attempts: int,
    db: str | None,
) -> None:
    """Run the engine service: ticks, the outbox dispatcher, message sending (Ctrl-C/SIGTERM stops it)."""
    use_db(ctx, db)
    from datetime import timedelta

    from engine.outbox.dispatcher import RetryPolicy
    from engine.service.runner import EngineService

    for name, value in (
        ("--tick-seconds", tick_seconds),
        ("--workers", workers),
        ("--lease-seconds", lease_seconds),
        ("--retry-base-seconds", retry_base_seconds),
        ("--max-attempts", max_attempts),
    ):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value:g}")
    policy = RetryPolicy(
        max_attempts=max_attempts,
        base=timedelta(seconds=retry_base_seconds),
        lease=timedelta(seconds=lease_seconds),
    )
    logging.getLogger().setLevel(logging.INFO)
    conveyor = open_conveyor(ctx)
    # Which provider carries each channel (names only: no URL, no secret); "record" sends nothing.
    logging.getLogger("conveyor.channels").info(
        "channels: %s", ", ".join(f"{c} → {p}" for c, p in channels(ctx).describe().items())
    )
    EngineService(
        conveyor, tick_seconds=tick_seconds, workers=workers, policy=policy, db_url=ctx.obj["db"]
    ).run()


@main.command()
@click.option(
    "--db", "db", default=None, metavar="URL", help="Database URL (same as the global --db)."
)
@click.pass_context
@friendly
def status(ctx: click.Context, db: str | None) -> None:
    """Is the service healthy? Last tick, actions by status, oldest waiting action, engines seen."""
    use_db(ctx, db)
    from engine.service.status import health, render

    c = open_read_only(ctx)
    try:
        click.echo(render(health(c)))
    finally:
        c.close()


#: An action's states, then a message's own (recorded: no provider for its channel; sent: accepted by the
#: gateway; delivered: the gateway says the client has it).
ACTION_STATUSES = ["pending", "sending", "failed", "dead", "done", "recorded", "sent", "delivered"]


@main.command()
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(ACTION_STATUSES),
    help="Only actions in this state (repeatable). Default: failed and dead.",
)
@click.option(
    "--deal", "deal_key", default=None, help="Only actions of this deal (its key, e.g. D-12)."
)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option(
    "--retry",
    "retry_ids",
    type=int,
    multiple=True,
    metavar="ID",
    help="Queue a failed or dead action again now (repeatable).",
)
@click.option(
    "--db", "db", default=None, metavar="URL", help="Database URL (same as the global --db)."
)
@click.pass_context
@friendly
def actions(
    ctx: click.Context,
    statuses: tuple[str, ...],
    deal_key: str | None,
    limit: int,
    retry_ids: tuple[int, ...],
    db: str | None,
) -> None:
    """List outbox actions with their errors (default: failed and dead), or retry some."""
    use_db(ctx, db)
    if retry_ids:  # the one write here; listing alone works on a read-only database
        writer = open_conveyor(ctx)
        try:
            for outbox_id in retry_ids:
                # As the CLI's actor, so the audit trail names who retried it (cli:<login>).
                writer.retry_action(outbox_id, actor=cli_actor())
                click.echo(f"action {outbox_id} queued again")
        finally:
            writer.close()
        if not statuses:
            return
    c = open_read_only(ctx)
    try:
        deal_id = c.deal_id(deal_key) if deal_key else None
        rows = c.queries.actions(list(statuses or ("failed", "dead")), deal_id=deal_id, limit=limit)
    finally:
        c.close()
    if not rows:
        click.echo(f"no {' or '.join(statuses or ('failed', 'dead'))} actions")
        return
    from engine.clock import display_zone, for_display

    # The same zone as `conveyor versions` and the builder, named once in the header.
    click.echo(
        f"actions (times in {display_zone().key}: next attempt while pending or failed, else last change)"
    )
    for a in rows:
        when = a.next_attempt_at if a.status in ("pending", "failed") else a.updated_at
        # A message shows its own state: "done" would not say whether it was sent or only recorded.
        state = a.message or a.status
        # A message to a manager names the manager it is for (and the deal it tells of, if any).
        whom = f"to {printable(a.manager):<9}" if a.manager else f"deal {printable(a.deal_key):<12}"
        about = f" deal {printable(a.deal_key)}" if a.manager and a.deal_key else ""
        click.echo(
            f"#{a.id:<6} {printable(state):<9} {printable(a.action):<17} "
            f"{whom} rule {printable(a.rule_id):<24} "
            f"attempts {a.attempts}  {for_display(when, '%Y-%m-%d %H:%M:%S')}{about}"
        )
        if a.message == "recorded" and a.manager:
            click.echo(
                "        recorded only: the manager has no channel (conveyor users set NAME --notify),"
                " or none is configured for it; shown in the builder"
            )
        elif a.message == "recorded":
            click.echo(
                "        recorded only: no provider is configured for this channel (see conveyor.toml)"
            )
        if a.gateway_id and a.gateway_id != "reconciled":
            click.echo(f"        gateway id: {printable(a.gateway_id)}")
        if a.last_error and (a.status != "done" or a.message == "failed"):
            click.echo(
                f"        {'gateway' if a.message == 'failed' else 'error'}: {printable(a.last_error)}"
            )


#: Until the builder has sign-in (issue "people"), it listens on this machine only unless told otherwise.

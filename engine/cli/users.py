"""``conveyor users``: the people who sign in to the builder (add, list, disable, enable, passwd, set, unlock).

A password is read from a hidden prompt (typed twice) or, with ``--password-stdin``, from the first line
of standard input; it is never an argument (it would sit in the shell's history) and never printed.
"""

from __future__ import annotations

import sys

import click

from engine.cli.app import cli_actor, main, open_conveyor
from engine.cli.errors import friendly
from engine.core.access import Role
from engine.i18n import _
from engine.printable import printable

ROLE_HELP = (
    "owner: everything; manager: the Deals board, their own deals and tasks, actions review;"
    " viewer: reads everything, changes nothing."
)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    return click.prompt(_("Password"), hide_input=True, confirmation_prompt=True)


@main.group()
def users() -> None:
    """People who sign in to the builder: add, list, disable, enable, passwd, set, unlock."""


@users.command("add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["owner", "manager", "viewer"]), required=True, help=ROLE_HELP
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@click.option(
    "--no-password",
    is_flag=True,
    help="No password: the user signs in only through single sign-on (needs --email).",
)
@click.option("--email", default=None, help="The e-mail single sign-on vouches for.")
@click.option("--phone", default="", help="A manager's phone (for their notifications).")
@click.option(
    "--team", is_flag=True, help="A manager who sees the whole team's deals, not only their own."
)
@click.pass_context
@friendly
def users_add(
    ctx: click.Context,
    name: str,
    role: str,
    password_stdin: bool,
    no_password: bool,
    email: str | None,
    phone: str,
    team: bool,
) -> None:
    """Add a user; the password comes from a hidden prompt or --password-stdin."""
    if no_password and not email:
        raise click.UsageError(_("--no-password needs --email (single sign-on finds users by it)"))
    password = None if no_password else _read_password(password_stdin)
    c = open_conveyor(ctx)
    try:
        info = c.users.add(
            name, role, password, email=email, phone=phone, sees_team=team, actor=cli_actor()
        )
    finally:
        c.close()
    click.echo(
        _("user '{name}' added ({role})").format(name=printable(info.name), role=info.role.value)
    )


@users.command("list")
@click.pass_context
@friendly
def users_list(ctx: click.Context) -> None:
    """Every user: name, role, active or disabled, e-mail, whether a manager sees the team."""
    c = open_conveyor(ctx)
    try:
        rows = c.users.list(actor=cli_actor())
    finally:
        c.close()
    if not rows:
        click.echo(_("no users (`conveyor users add NAME --role owner`)"))
    for u in rows:
        state = _("active") if u.active else _("disabled")
        extra = [printable(u.email)] if u.email else []
        if u.role is Role.MANAGER and u.sees_team:
            extra.append(_("sees the team"))
        if not u.has_password:
            extra.append(_("single sign-on only"))
        click.echo(f"{printable(u.name):<24} {u.role.value:<8} {state:<9} {'  '.join(extra)}")


@users.command("disable")
@click.argument("name")
@click.pass_context
@friendly
def users_disable(ctx: click.Context, name: str) -> None:
    """Stop a user signing in; their open sessions end; a manager gets no new deals."""
    c = open_conveyor(ctx)
    try:
        c.users.disable(name, actor=cli_actor())
    finally:
        c.close()
    click.echo(_("user '{name}' disabled").format(name=printable(name)))


@users.command("enable")
@click.argument("name")
@click.pass_context
@friendly
def users_enable(ctx: click.Context, name: str) -> None:
    """Let a disabled user sign in again."""
    c = open_conveyor(ctx)
    try:
        c.users.enable(name, actor=cli_actor())
    finally:
        c.close()
    click.echo(_("user '{name}' enabled").format(name=printable(name)))


@users.command("passwd")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@click.pass_context
@friendly
def users_passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Give a user a new password; their open sessions end."""
    password = _read_password(password_stdin)
    c = open_conveyor(ctx)
    try:
        c.users.set_password(name, password, actor=cli_actor())
    finally:
        c.close()
    click.echo(_("password of '{name}' changed").format(name=printable(name)))


@users.command("set")
@click.argument("name")
@click.option(
    "--email", default=None, help="The e-mail single sign-on vouches for ('' removes it)."
)
@click.option(
    "--team/--own-deals",
    default=None,
    help="Whether a manager sees the whole team's deals or only their own.",
)
@click.option(
    "--notify",
    default=None,
    metavar="CHANNEL:ADDRESS",
    help="Where a manager is told of notifications, urgent tasks and the daily digest:"
    " telegram:CHAT_ID, email:ADDRESS or sms:PHONE on a configured channel; 'none' for the builder only.",
)
@click.pass_context
@friendly
def users_set(
    ctx: click.Context, name: str, email: str | None, team: bool | None, notify: str | None
) -> None:
    """Change a user's e-mail, whether a manager sees the whole team, or where a manager is notified."""
    c = open_conveyor(ctx)
    try:
        if notify is not None:  # first: a refused preference leaves everything as it was
            where = c.manager_channels.set(name, notify, actor=cli_actor())
            click.echo(
                _("manager '{name}' is notified on: {where}").format(
                    name=printable(where.manager), where=printable(str(where))
                )
            )
            if email is None and team is None:
                return
        info = c.users.update(name, email=email, sees_team=team, actor=cli_actor())
    finally:
        c.close()
    click.echo(
        _("user '{name}': e-mail {email}, sees the team: {team}").format(
            name=printable(info.name),
            email=printable(info.email or "-"),
            team=_("yes") if info.sees_team else _("no"),
        )
    )


@users.command("unlock")
@click.argument("name", required=False)
@click.option("--all", "everything", is_flag=True, help="Every account and every address.")
@click.pass_context
@friendly
def users_unlock(ctx: click.Context, name: str | None, everything: bool) -> None:
    """Lift the wait after failed sign-ins, of one account (NAME) or of all (--all)."""
    if bool(name) == everything:
        raise click.UsageError(_("give a user's NAME or --all"))
    c = open_conveyor(ctx)
    try:
        c.users.unlock(None if everything else name, actor=cli_actor())
    finally:
        c.close()
    click.echo(
        _("every account and address may sign in again")
        if everything
        else _("'{name}' may sign in again").format(name=printable(name or ""))
    )

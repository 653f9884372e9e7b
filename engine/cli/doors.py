"""The HTTP doors from the command line: ``api`` (serve), ``keys``, ``hooks`` and ``forms``.

A new key or hook secret is printed once, alone on the last line of the output, and never again.
"""

from __future__ import annotations

from datetime import timedelta

import click

from engine.cli.app import cli_actor, main, open_conveyor
from engine.cli.errors import friendly
from engine.printable import printable

API_HOST_HELP = (
    "Address the API listens on (default: this machine only); 0.0.0.0 serves every network interface"
    " — every request needs an API key, a signed hook or a form token."
)


@main.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, metavar="ADDRESS", help=API_HOST_HELP
)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option(
    "--proxy-headers/--no-proxy-headers",
    default=False,
    show_default=True,
    help="Behind a reverse proxy: take the client's address (and scheme) from X-Forwarded-For"
    " (X-Forwarded-Proto) when the connection comes from --forwarded-allow-ips; the website"
    " form's rate limit then counts per real client instead of per proxy.",
)
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDRESSES",
    help="Comma-separated addresses or networks of the proxies trusted with --proxy-headers"
    " ('*' trusts every peer: only when nothing but the proxy can reach the API).",
)
@click.pass_context
@friendly
def api(
    ctx: click.Context, host: str, port: int, proxy_headers: bool, forwarded_allow_ips: str
) -> None:
    """Serve the HTTP API (uvicorn) on http://127.0.0.1:PORT; docs at /docs, schema at /openapi.json."""
    import uvicorn

    from engine.api.app import create_app
    from engine.cli.serve import check_port

    check_port(port, "api", host)
    c = open_conveyor(ctx)
    shown = "localhost" if host == "127.0.0.1" else host
    click.echo(f"api: http://{shown}:{port}  (docs: http://{shown}:{port}/docs; Ctrl-C stops it)")
    uvicorn.run(
        create_app(c),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told otherwise: off unless asked for,
        # so a client cannot pick its own address for the rate limit.
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
    )
    c.close()


@main.group()
def keys() -> None:
    """API keys: create (shown once), list, revoke."""


@keys.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["owner", "manager", "integration", "viewer"]),
    required=True,
    help="owner: everything; manager: deals, tasks, actions; integration: deals, events, activities;"
    " viewer: reads only.",
)
@click.pass_context
@friendly
def keys_create(ctx: click.Context, name: str, role: str) -> None:
    """Create an API key; it is printed once, alone on the last line (store it now)."""
    c = open_conveyor(ctx)
    try:
        info, key = c.api_keys.create(name, role, actor=cli_actor())
    finally:
        c.close()
    click.echo(
        f"API key '{printable(info.name)}' ({info.role.value}) created; it is shown only now:"
    )
    click.echo(key)


@keys.command("list")
@click.pass_context
@friendly
def keys_list(ctx: click.Context) -> None:
    """Every API key: name, role, its first characters, created, revoked."""
    from engine.clock import for_display

    c = open_conveyor(ctx)
    try:
        rows = c.api_keys.list()
    finally:
        c.close()
    if not rows:
        click.echo("no API keys (`conveyor keys create NAME --role integration`)")
    for k in rows:
        state = f"revoked {for_display(k.revoked_at)}" if k.revoked_at else "active"
        click.echo(
            f"{printable(k.name):<24} {k.role.value:<12} {k.prefix}…  created {for_display(k.created_at)}  {state}"
        )


@keys.command("revoke")
@click.argument("name")
@click.pass_context
@friendly
def keys_revoke(ctx: click.Context, name: str) -> None:
    """Revoke a key: every request with it is refused from now on."""
    c = open_conveyor(ctx)
    try:
        c.api_keys.revoke(name, actor=cli_actor())
    finally:
        c.close()
    click.echo(f"API key '{printable(name)}' revoked")


@main.group()
def hooks() -> None:
    """Signed inbound webhooks: create (secret shown once), rotate, list, the call log."""


@hooks.command("create")
@click.argument("name")
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="/POINTER=FIELD",
    help="Read a foreign payload: a JSON pointer and the field it fills (id, deal, event or data.NAME),"
    " e.g. --map /order_id=deal --map /amount=data.amount (repeatable).",
)
@click.option(
    "--event", default=None, help="The declared event a call records when its body names none."
)
@click.pass_context
@friendly
def hooks_create(
    ctx: click.Context, name: str, mappings: tuple[str, ...], event: str | None
) -> None:
    """Create a hook at POST /hooks/NAME; its signing secret is printed once, on the last line."""
    from engine.core.hooks import parse_mapping

    c = open_conveyor(ctx)
    try:
        info, secret = c.hooks.create(name, parse_mapping(mappings), event=event, actor=cli_actor())
    finally:
        c.close()
    click.echo(
        f"hook '{info.name}' created: POST /hooks/{info.name}, signed with"
        ' Conveyor-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>;'
        " the secret is shown only now:"
    )
    click.echo(secret)


@hooks.command("rotate")
@click.argument("name")
@click.option(
    "--grace-hours",
    type=click.FloatRange(min=0),
    default=24,
    show_default=True,
    help="How long the old secret keeps verifying.",
)
@click.pass_context
@friendly
def hooks_rotate(ctx: click.Context, name: str, grace_hours: float) -> None:
    """Give a hook a new secret (printed once, last line); the old one works for --grace-hours more."""
    c = open_conveyor(ctx)
    try:
        secret = c.hooks.rotate(name, grace=timedelta(hours=grace_hours), actor=cli_actor())
    finally:
        c.close()
    click.echo(
        f"hook '{printable(name)}' has a new secret; the old one is accepted for {grace_hours:g} h more:"
    )
    click.echo(secret)


@hooks.command("list")
@click.option(
    "--calls", "show_calls", type=int, default=0, metavar="N", help="Also show the latest N calls."
)
@click.pass_context
@friendly
def hooks_list(ctx: click.Context, show_calls: int) -> None:
    """Every hook and its mapping; with --calls N the latest calls (time, hook, id, outcome)."""
    from engine.clock import for_display

    c = open_conveyor(ctx)
    try:
        rows = c.hooks.list()
        calls = c.hooks.calls(limit=show_calls) if show_calls > 0 else []
    finally:
        c.close()
    if not rows:
        click.echo("no hooks (`conveyor hooks create NAME`)")
    for h in rows:
        mapped = ", ".join(f"{p}→{f}" for f, p in h.mapping.items()) or "canonical body"
        click.echo(
            f"{h.name:<20} {mapped}{f'; event {h.event}' if h.event else ''}"
            f"  created {for_display(h.created_at)}"
        )
    for call in calls:
        click.echo(
            f"{for_display(call.at, '%Y-%m-%d %H:%M:%S')}  {printable(call.hook):<16} "
            f"{printable(call.event_id or '-'):<24} {call.outcome:<10} {printable(call.detail)}"
        )


@main.group()
def forms() -> None:
    """Website lead forms: create (prints the public form token), list, revoke."""


@forms.command("create")
@click.argument("funnel")
@click.option(
    "--field",
    "fields",
    multiple=True,
    help="A field the form may set (repeatable; default: title, phone, email).",
)
@click.option(
    "--origin",
    "origins",
    multiple=True,
    metavar="URL",
    help="A website allowed to post from a browser (CORS), e.g. https://example.com (repeatable).",
)
@click.option(
    "--rate",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Submissions per hour from one address.",
)
@click.pass_context
@friendly
def forms_create(
    ctx: click.Context, funnel: str, fields: tuple[str, ...], origins: tuple[str, ...], rate: int
) -> None:
    """Create a lead form for FUNNEL; prints its public token (it goes in the website's HTML) last."""
    c = open_conveyor(ctx)
    try:
        info = c.forms.create(
            funnel,
            fields=list(fields),
            origins=list(origins),
            rate_per_hour=rate,
            actor=cli_actor(),
        )
    finally:
        c.close()
    click.echo(
        f"form for funnel '{info.funnel}' created: POST /forms/{info.funnel} with fields"
        f" {', '.join(info.fields)} (docs/api.md has an HTML snippet); its token:"
    )
    click.echo(info.token)


@forms.command("list")
@click.pass_context
@friendly
def forms_list(ctx: click.Context) -> None:
    """Every form: funnel, fields, origins, rate, token."""
    c = open_conveyor(ctx)
    try:
        rows = c.forms.list()
    finally:
        c.close()
    if not rows:
        click.echo("no forms (`conveyor forms create FUNNEL`)")
    for f in rows:
        click.echo(
            f"{f.funnel:<16} fields {','.join(f.fields):<28} origins {','.join(f.origins) or '-':<28}"
            f" {f.rate_per_hour}/h  {'revoked' if f.revoked else f.token}"
        )


@forms.command("revoke")
@click.argument("token")
@click.pass_context
@friendly
def forms_revoke(ctx: click.Context, token: str) -> None:
    """Stop accepting submissions with TOKEN."""
    c = open_conveyor(ctx)
    try:
        c.forms.revoke(token, actor=cli_actor())
    finally:
        c.close()
    click.echo("form revoked")

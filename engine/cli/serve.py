"""Serving people: ``builder`` and ``demo``, and the child processes they start and always stop."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from typing import Any

import click

from engine.cli.app import main, open_conveyor
from engine.cli.errors import friendly
from engine.paths import BUILDER_APP
from storage.urls import mask_database_url

LOCAL_HOST = "127.0.0.1"
HOST_HELP = (
    "Address the builder listens on: the default serves this machine only; 0.0.0.0 serves every"
    " network interface. Everyone signs in (conveyor users add), but the builder speaks plain HTTP:"
    " serve the network only behind a reverse proxy with TLS (docs/operations.md)."
)


@main.command()
@click.option("--port", type=int, default=8501, show_default=True)
@click.option("--host", default=LOCAL_HOST, show_default=True, metavar="ADDRESS", help=HOST_HELP)
@click.option("--headless/--no-headless", default=True, show_default=True)
@click.pass_context
@friendly
def builder(ctx: click.Context, port: int, host: str, headless: bool) -> None:
    """Serve the visual builder (Streamlit) on http://127.0.0.1:PORT (this machine only, see --host).

    SIGTERM or Ctrl-C stops it and the Streamlit server it started (exit 0).
    """
    check_port(port, "builder", host)
    open_conveyor(ctx)  # migrate before the app starts
    with _Children() as children:
        children.start(
            _builder_command(port, headless, host), _child_env(ctx.obj["db"]), own_group=headless
        )
        _say_where(host, port, "Ctrl-C stops it")
        children.wait()
    if children.returncodes() and not children.stopped_by:
        sys.exit(children.returncodes()[0] or 0)


def _port_in_use(port: int, host: str = LOCAL_HOST) -> bool:
    """Would Streamlit fail to listen on ``host``:``port``?"""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        raise ValueError(f"--host {host!r} is not an address of this machine") from None
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As Tornado does: a port left in TIME_WAIT by an earlier run is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            import errno

            if exc.errno == errno.EADDRNOTAVAIL:
                raise ValueError(f"--host {host!r} is not an address of this machine") from None
            return True
    return False


def check_port(port: int, command: str, host: str = LOCAL_HOST) -> None:
    """Refuse early, with the fix, instead of Streamlit's bare "Port 8501 is not available"."""
    if not 0 < port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {port}")
    if _port_in_use(port, host):
        raise ValueError(
            f"port {port} is already in use — run `conveyor {command} --port {port + 1}`"
            " (or stop what uses it)"
        )


def _say_where(host: str, port: int, how_to_stop: str) -> None:
    shown = (
        "localhost" if host in (LOCAL_HOST, "localhost") else f"[{host}]" if ":" in host else host
    )
    click.echo(f"builder: http://{shown}:{port}  ({how_to_stop})")
    if host not in (LOCAL_HOST, "localhost", "::1"):
        click.echo(
            f"warning: {host}:{port} serves the network in plain HTTP: passwords and pages cross it"
            " unencrypted; put a reverse proxy with TLS in front (docs/operations.md)",
            err=True,
        )


def _builder_command(port: int, headless: bool, host: str) -> list[str]:
    app = BUILDER_APP
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        str(headless).lower(),
        "--browser.gatherUsageStats",
        "false",
        # Explicit, so no config file turns it off: a form posted from another site is refused.
        "--server.enableXsrfProtection",
        "true",
    ]


def _child_env(db: str) -> dict[str, str]:
    # The URL goes to the children in the environment, never on a command line others can read (ps).
    return {**os.environ, "CONVEYOR_DB": db}


def _die_with_parent(parent: int) -> None:
    """Runs in each child before exec: SIGTERM when the CLI process dies, however it dies (even SIGKILL)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


class _Children:
    """The processes ``builder`` and ``demo`` start, stopped together (each dies with the CLI, too).

    A child that does not need the terminal gets its own process group, stopped as a whole; one that
    may prompt (``builder --no-headless``) stays in the terminal's group so its prompt can read.

    While it is open, SIGTERM, SIGINT and SIGHUP only mark a stop (no exception in the middle of
    clean-up); leaving it terminates every group (then kills one that does not end in 20 s) and waits.
    """

    STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stopped_by: int | None = None
        self._previous: dict[int, Any] = {}
        self._groups: dict[int, bool] = {}

    def __enter__(self) -> _Children:
        for sig in self.STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopped_by = self.stopped_by or signum

    def start(
        self, argv: list[str], env: dict[str, str], *, own_group: bool = True
    ) -> subprocess.Popen[bytes]:
        if self.stopped_by:
            raise KeyboardInterrupt
        proc = subprocess.Popen(
            argv,
            env=env,
            process_group=0 if own_group else None,
            preexec_fn=functools.partial(_die_with_parent, os.getpid()),
        )
        self.procs.append(proc)
        self._groups[proc.pid] = own_group
        return proc

    def wait(self) -> None:
        """Until a stop signal arrives or any child ends."""
        while not self.stopped_by and all(p.poll() is None for p in self.procs):
            time.sleep(0.2)

    def returncodes(self) -> list[int | None]:
        return [p.returncode for p in self.procs]

    def __exit__(self, *_exc: object) -> None:
        try:
            for p in self.procs:
                self._signal(p, signal.SIGTERM)
            deadline = time.monotonic() + 20
            for p in self.procs:
                try:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._signal(p, signal.SIGKILL)
                    p.wait()
            for p in self.procs:  # whatever a child left in its own group (none expected)
                if self._groups.get(p.pid):
                    self._signal(p, signal.SIGKILL)
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)

    def _signal(self, proc: subprocess.Popen[bytes], sig: int) -> None:
        try:
            if self._groups.get(proc.pid):
                os.killpg(proc.pid, sig)
            elif proc.poll() is None:
                proc.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass


@main.command()
@click.option("--port", type=int, default=8501, show_default=True)
@click.option("--host", default=LOCAL_HOST, show_default=True, metavar="ADDRESS", help=HOST_HELP)
@click.option("--tick-seconds", type=float, default=30, show_default=True)
@click.option("--no-builder", is_flag=True, help="Only load the data and run the engine.")
@click.option(
    "--load-only", is_flag=True, help="Only load the sample funnel and demo deals, then exit."
)
@click.option(
    "--api-port",
    type=int,
    default=8000,
    show_default=True,
    help="Port of the HTTP API on 127.0.0.1 (0: no API; a busy port is skipped with a warning).",
)
@click.pass_context
@friendly
def demo(
    ctx: click.Context,
    port: int,
    host: str,
    tick_seconds: float,
    no_builder: bool,
    load_only: bool,
    api_port: int,
) -> None:
    """Load the sample funnel and demo deals, then run the engine and the builder until Ctrl-C.

    The builder listens on 127.0.0.1 unless --host says otherwise. SIGTERM or Ctrl-C stops the
    engine and the builder it started (exit 0).
    """
    from engine.cli.demo_data import demo_users_text, load_demo

    if not (no_builder or load_only):
        check_port(
            port, "demo", host
        )  # before anything starts, so a busy port leaves nothing running

    c = open_conveyor(ctx)
    click.echo(f"database: {mask_database_url(ctx.obj['db'])} — {load_demo(c)}")
    click.echo(demo_users_text())
    api_key = None
    if not load_only and api_port:
        if not 0 < api_port < 65536 or _port_in_use(api_port):
            click.echo(
                f"warning: port {api_port} is not free; the API is not started (--api-port N)",
                err=True,
            )
            api_port = 0
        else:
            api_key = c.api_keys.create(
                f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}", "manager"
            )[1]
    c.close()
    if load_only:
        return
    env = _child_env(ctx.obj["db"])
    # The demo's firm is Ukrainian: its builder starts in Ukrainian unless CONVEYOR_LANG says otherwise.
    if not env.get("CONVEYOR_LANG", "").strip():
        env["CONVEYOR_LANG"] = "uk"
    with _Children() as children:
        children.start(
            [sys.executable, "-m", "engine.cli", "engine", "--tick-seconds", str(tick_seconds)], env
        )
        if api_port:
            children.start(
                [
                    sys.executable,
                    "-m",
                    "engine.cli",
                    "api",
                    "--host",
                    LOCAL_HOST,
                    "--port",
                    str(api_port),
                ],
                env,
            )
            click.echo(
                f"api: http://localhost:{api_port}  (docs: /docs) — a demo key (manager role), shown once:"
            )
            click.echo(api_key)
        if not no_builder:
            children.start(_builder_command(port, True, host), env)
            _say_where(host, port, "Ctrl-C stops the engine and the builder")
        children.wait()
    failed = [code for code in children.returncodes() if code not in (0, None, -15, 143)]
    if failed or not children.stopped_by:  # a child that ended by itself is a failure of the demo
        sys.exit(1)

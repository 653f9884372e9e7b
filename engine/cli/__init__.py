"""The ``conveyor`` command line. Errors are reported as plain sentences, never as tracebacks."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from functools import wraps
from pathlib import Path
from typing import Any

import click

from engine.cli.paths import BUILDER_APP, SAMPLE_RULES
from engine.errors import ConveyorError, RuleSetInvalid
from engine.printable import printable
from storage.db import database_url
from storage.errors import StorageError
from storage.urls import mask_database_url, redact


def _known_urls() -> list[str]:
    """Every URL this run was given (``--db``, ``CONVEYOR_DB``, ``CONVEYOR_PROVIDER``, the command line)."""
    urls = [os.environ.get("CONVEYOR_DB"), os.environ.get("CONVEYOR_PROVIDER")]
    ctx = click.get_current_context(silent=True)
    if ctx is not None and isinstance(ctx.find_root().obj, dict):
        urls.append(ctx.find_root().obj.get("db"))
    urls += [a.split("=", 1)[-1] for a in sys.argv[1:] if "://" in a]
    return [u for u in urls if u]


def _safe(message: object) -> str:
    """A message for the terminal: the secrets of every known URL masked, control characters escaped."""
    return "\n".join(printable(line) for line in redact(str(message), _known_urls()).split("\n"))


class _RedactSecrets(logging.Filter):
    """Masks the secrets of this run's URLs in every log line (a driver error may quote the DSN)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = redact(message, _known_urls())
        if safe != message:
            record.msg, record.args = safe, None
        if record.exc_info and not record.exc_text:  # the formatter uses this text as it is
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), _known_urls())
        return True


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {_safe(message)}", err=True)
    sys.exit(code)


def friendly(fn):  # noqa: ANN001, ANN201
    """Turn every error into one clear message and a non-zero exit code."""
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            # Ctrl-C is the user's choice, not an error: one line, the shell's usual 128 + SIGINT.
            click.echo("interrupted", err=True)
            sys.exit(130)
        except RuleSetInvalid as exc:
            _fail(str(exc), 1)
        except (ConveyorError, StorageError, ValueError) as exc:
            _fail(str(exc), 1)
        except FileNotFoundError as exc:
            _fail(f"no such file: {exc.filename}", 1)
        except OSError as exc:
            _fail(f"{exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "), 1)
        except Exception as exc:  # noqa: BLE001
            from sqlalchemy.exc import SQLAlchemyError

            if isinstance(exc, SQLAlchemyError):
                detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                _fail(f"database error: {detail}", 1)
            if os.environ.get("CONVEYOR_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (set CONVEYOR_DEBUG=1 for a traceback)", 2)
    return wrapper


def _conveyor(ctx: click.Context, **kwargs: Any):  # noqa: ANN202
    from engine.core.conveyor import Conveyor
    from engine.outbox.providers import provider_from_url

    provider = provider_from_url(os.environ.get("CONVEYOR_PROVIDER"))
    return Conveyor(ctx.obj["db"], provider=provider, **kwargs)


def _reader(ctx: click.Context):  # noqa: ANN202
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
            exc.message = _safe(exc.message)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            exc.message = _safe(exc.message)
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
        if not any(isinstance(f, _RedactSecrets) for f in handler.filters):
            handler.addFilter(_RedactSecrets())
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command()
@click.option("--load", "load", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Also save every rule set in this folder (e.g. sample_rules).")
@click.pass_context
@friendly
def init(ctx: click.Context, load: Path | None) -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    c = _conveyor(ctx)
    click.echo(f"database ready: {mask_database_url(ctx.obj['db'])}")
    if load:
        for v in c.load_rules_dir(load, author="cli"):
            click.echo(f"saved {printable(v.funnel)} version {v.version}")


def _funnels_in_database(url: str) -> set[str]:
    """Funnel ids already saved in the database at ``url``; empty if it does not exist or cannot be read.

    Read-only on purpose: validating a file must never create a database (or a conveyor.db file).
    """
    import sqlite3

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from storage.db import sqlite_path

    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = sqlite_path(url)
            if path is None or not os.path.isfile(path):
                return set()
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
            try:
                return {row[0] for row in con.execute("SELECT id FROM funnels")}
            finally:
                con.close()
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, connect_args={"connect_timeout": 3}
                               if parsed.get_backend_name() == "postgresql" else {})
        try:
            with engine.connect() as conn:
                return {row[0] for row in conn.execute(text("SELECT id FROM funnels"))}
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - no database (or no schema yet) only means fewer known funnels
        return set()


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
@friendly
def validate(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Check rule-set documents; print every problem with its JSON path. Exit 1 if any is invalid.

    A start_process may name a funnel in another file given here, beside the file, or already saved
    in the database (--db / $CONVEYOR_DB, if that database exists).
    """
    from engine.document.validate import read_document, validate_document
    from engine.text import storable

    bad = 0

    def report(f: Path, problems: list[Any]) -> None:
        nonlocal bad
        bad += 1
        click.echo(f"{storable(str(f))}: {len(problems)} problem(s)", err=True)
        for p in problems:
            click.echo(f"  {p}", err=True)

    # Every file is checked and reported, whatever an earlier one holds: a file that cannot be
    # read or parsed gets one "error:" line (its message names the file) and the others go on.
    docs: dict[Path, Any] = {}
    for f in files:
        try:
            docs[f] = read_document(f, storable(str(f)))
        except RuleSetInvalid as exc:
            bad += 1
            for p in exc.problems:
                click.echo(f"error: {p}", err=True)
        except OSError as exc:
            bad += 1
            what = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc)).lower()
            click.echo(f"error: {what}: {storable(str(f))}", err=True)
        except Exception as exc:  # noqa: BLE001 - one unreadable file must not hide the others' problems
            bad += 1
            click.echo(f"error: {storable(str(f))} could not be read: {type(exc).__name__}: {storable(str(exc), 300)}",
                       err=True)
    known = {d.get("funnel") for d in docs.values() if isinstance(d, dict)}
    known |= _sibling_funnels(files)
    known |= _funnels_in_database(ctx.obj["db"])
    for f, doc in docs.items():
        try:
            rs = validate_document(doc, known_funnels={k for k in known if isinstance(k, str)})
            click.echo(f"{storable(str(f))}: ok ({rs.name}: {len(rs.stages)} stages, {len(rs.rules)} rules)")
        except RuleSetInvalid as exc:
            report(f, exc.problems)
        except Exception as exc:  # noqa: BLE001 - a validator bug is reported for this file; the rest go on
            report(f, [f"could not be checked: {type(exc).__name__}: {storable(str(exc), 300)}"])
    if bad:
        sys.exit(1)


def _sibling_funnels(files: tuple[Path, ...]) -> set[Any]:
    """Funnel ids of the ``*.json`` files beside ``files`` (``start_process`` may name them).

    Read like the files themselves, within the document size limit: a huge or special file there
    (a 142 MB export, a pipe) is skipped unread; any other unreadable one only means fewer funnels.
    """
    from engine.document.validate import read_document

    given = {Path(f).resolve() for f in files}
    known: set[Any] = set()
    for folder in dict.fromkeys(Path(f).resolve().parent for f in files):
        for sibling in sorted(folder.glob("*.json")):
            if sibling in given:
                continue
            try:
                doc = read_document(sibling)
            except Exception:  # noqa: BLE001 - too large, not a file, not JSON: no funnel from it
                continue
            if isinstance(doc, dict):
                known.add(doc.get("funnel"))
    return known


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--comment", default="", help="Why this version exists.")
@click.option("--author", default=os.environ.get("USER", ""), help="Who saves it.")
@click.option("--inactive", is_flag=True, help="Save without making it the active version.")
@click.pass_context
@friendly
def import_(ctx: click.Context, file: Path, comment: str, author: str, inactive: bool) -> None:
    """Validate a rule-set document and save it as a new version (nothing is saved if invalid)."""
    from engine.document.validate import parse_json

    c = _conveyor(ctx)
    v = c.save_ruleset(parse_json(file.read_bytes(), str(file)), comment=comment or f"imported {file.name}",
                       author=author, activate=not inactive)
    click.echo(f"saved {printable(v.funnel)} version {v.version}{' (active)' if v.active else ''}")


@main.command()
@click.argument("funnel")
@click.option("--format", "fmt", type=click.Choice(["conveyor", "business-rules"]), default="conveyor",
              show_default=True, help="Whole document, or the bare business-rules rules list.")
@click.option("--version", type=int, default=None, help="A version number (default: the active one).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_context
@friendly
def export(ctx: click.Context, funnel: str, fmt: str, version: int | None, output: Path | None) -> None:
    """Write a funnel's rule set as JSON."""
    c = _reader(ctx)
    try:
        text = c.export(funnel, fmt, version)
    finally:
        c.close()
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        # The same JSON, with the invisible and terminal-control characters JSON leaves raw as \uXXXX escapes.
        click.echo("".join(f"\\u{ord(ch):04x}" if ch not in "\n\t\r" and printable(ch) != ch else ch
                           for ch in text), nl=False)


@main.command()
@click.argument("funnel")
@click.pass_context
@friendly
def versions(ctx: click.Context, funnel: str) -> None:
    """List a funnel's saved versions."""
    from engine.clock import display_zone, for_display

    c = _reader(ctx)
    try:
        found = c.versions(funnel)
    finally:
        c.close()
    click.echo(f"versions of {printable(funnel)} (times in {display_zone().key}; * = active)")
    for v in found:
        mark = "*" if v.active else " "
        click.echo(f"{mark} v{v.version}  {for_display(v.created_at)}  {printable(v.author or '-'):<12} "
                   f"{printable(v.comment)}")


@main.command()
@click.argument("funnel")
@click.argument("version", type=int)
@click.pass_context
@friendly
def activate(ctx: click.Context, funnel: str, version: int) -> None:
    """Make an older version active again (rollback)."""
    v = _conveyor(ctx).activate(funnel, version)
    click.echo(f"{printable(v.funnel)} version {v.version} is active")


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rule-set documents (default: every sample_rules/*.json).")
@click.option("--tick-minutes", type=float, default=15, show_default=True)
@friendly
def simulate(scenario: Path, rules: tuple[Path, ...], tick_minutes: float) -> None:
    """Run a JSON-lines scenario on a fresh in-memory database; print each executed action as JSON."""
    from engine.errors import Problem
    from engine.simulate.simulator import run_scenario

    paths = list(rules) or sorted(SAMPLE_RULES.glob("*.json"))
    try:
        with scenario.open(encoding="utf-8") as fh:
            run_scenario(fh, paths, tick_minutes,
                         emit=lambda line: click.echo(json.dumps(line, ensure_ascii=False)))
    except RuleSetInvalid as exc:
        # A simulation knows only the files given to it: the fix is another --rules, not an import.
        hint = "validate it together with that funnel's file, or import that funnel first"
        raise RuleSetInvalid([Problem(p.path, p.message.replace(hint, "pass that funnel's file too, with another --rules"))
                              for p in exc.problems]) from None


@main.command()
@click.option("--tick-seconds", type=float, default=60, show_default=True, help="How often time-based rules are evaluated.")
@click.option("--workers", type=int, default=4, show_default=True, help="Messages sent in parallel.")
@click.option("--lease-seconds", type=float, default=120, show_default=True,
              help="How long a message being sent stays claimed before another engine may reconcile it.")
@click.option("--retry-base-seconds", type=float, default=30, show_default=True,
              help="First retry delay; it doubles on each attempt (with jitter), up to one hour.")
@click.option("--max-attempts", type=int, default=6, show_default=True,
              help="Attempts before an action is given up as dead.")
@click.option("--db", "db", default=None, metavar="URL", help="Database URL (same as the global --db).")
@click.pass_context
@friendly
def engine(ctx: click.Context, tick_seconds: float, workers: int, lease_seconds: float,
           retry_base_seconds: float, max_attempts: int, db: str | None) -> None:
    """Run the engine service: ticks, the outbox dispatcher, message sending (Ctrl-C/SIGTERM stops it)."""
    _db_here(ctx, db)
    from datetime import timedelta

    from engine.outbox.dispatcher import RetryPolicy
    from engine.service.runner import EngineService

    for name, value in (("--tick-seconds", tick_seconds), ("--workers", workers), ("--lease-seconds", lease_seconds),
                        ("--retry-base-seconds", retry_base_seconds), ("--max-attempts", max_attempts)):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value:g}")
    policy = RetryPolicy(max_attempts=max_attempts, base=timedelta(seconds=retry_base_seconds),
                         lease=timedelta(seconds=lease_seconds))
    logging.getLogger().setLevel(logging.INFO)
    EngineService(_conveyor(ctx), tick_seconds=tick_seconds, workers=workers, policy=policy,
                  db_url=ctx.obj["db"]).run()


@main.command()
@click.option("--db", "db", default=None, metavar="URL", help="Database URL (same as the global --db).")
@click.pass_context
@friendly
def status(ctx: click.Context, db: str | None) -> None:
    """Is the service healthy? Last tick, actions by status, oldest waiting action, engines seen."""
    _db_here(ctx, db)
    from engine.service.status import health, render

    c = _reader(ctx)
    try:
        click.echo(render(health(c)))
    finally:
        c.close()


ACTION_STATUSES = ["pending", "sending", "failed", "dead", "done"]


def _db_here(ctx: click.Context, db: str | None) -> None:
    """``conveyor engine --db URL`` reads as well as ``conveyor --db URL engine``."""
    if db:
        ctx.obj["db"] = database_url(db)


@main.command()
@click.option("--status", "statuses", multiple=True, type=click.Choice(ACTION_STATUSES),
              help="Only actions in this state (repeatable). Default: failed and dead.")
@click.option("--deal", "deal_key", default=None, help="Only actions of this deal (its key, e.g. D-12).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--retry", "retry_ids", type=int, multiple=True, metavar="ID",
              help="Queue a failed or dead action again now (repeatable).")
@click.option("--db", "db", default=None, metavar="URL", help="Database URL (same as the global --db).")
@click.pass_context
@friendly
def actions(ctx: click.Context, statuses: tuple[str, ...], deal_key: str | None, limit: int,
            retry_ids: tuple[int, ...], db: str | None) -> None:
    """List outbox actions with their errors (default: failed and dead), or retry some."""
    _db_here(ctx, db)
    from engine.outbox.dispatcher import retry
    from storage import repositories as repo

    if retry_ids:  # the one write here; listing alone works on a read-only database
        writer = _conveyor(ctx)
        try:
            for outbox_id in retry_ids:
                retry(writer, outbox_id)
                click.echo(f"action {outbox_id} queued again")
        finally:
            writer.close()
        if not statuses:
            return
    c = _reader(ctx)
    try:
        deal_id = c.deal_id(deal_key) if deal_key else None
        with c.session() as s:
            rows = repo.list_outbox(s, statuses=list(statuses or ("failed", "dead")), deal_id=deal_id, limit=limit)
            keys = {d.id: d.key for d in repo.deals_by_ids(s, sorted({a.deal_id for a, _f in rows}))}
    finally:
        c.close()
    if not rows:
        click.echo(f"no {' or '.join(statuses or ('failed', 'dead'))} actions")
        return
    from engine.clock import display_zone, for_display

    # The same zone as `conveyor versions` and the builder, named once in the header.
    click.echo(f"actions (times in {display_zone().key}: next attempt while pending or failed, else last change)")
    for a, f in rows:
        when = a.next_attempt_at if a.status in ("pending", "failed") else a.updated_at
        click.echo(f"#{a.id:<6} {printable(a.status):<8} {printable(a.action):<17} "
                   f"deal {printable(keys.get(a.deal_id, a.deal_id)):<12} rule {printable(f.rule_id):<24} "
                   f"attempts {a.attempts}  {for_display(when, '%Y-%m-%d %H:%M:%S')}")
        if a.last_error:
            click.echo(f"        error: {printable(a.last_error)}")


#: Until the builder has sign-in (issue "people"), it listens on this machine only unless told otherwise.
LOCAL_HOST = "127.0.0.1"
HOST_HELP = ("Address the builder listens on. It has no sign-in yet, so anyone who can reach it can change the"
             " funnel: the default serves this machine only; 0.0.0.0 serves every network interface.")


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
    _check_port(port, "builder", host)
    _conveyor(ctx)  # migrate before the app starts
    with _Children() as children:
        children.start(_builder_command(port, headless, host), _child_env(ctx.obj["db"]), own_group=headless)
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


def _check_port(port: int, command: str, host: str = LOCAL_HOST) -> None:
    """Refuse early, with the fix, instead of Streamlit's bare "Port 8501 is not available"."""
    if not 0 < port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {port}")
    if _port_in_use(port, host):
        raise ValueError(f"port {port} is already in use — run `conveyor {command} --port {port + 1}`"
                         " (or stop what uses it)")


def _say_where(host: str, port: int, how_to_stop: str) -> None:
    shown = "localhost" if host in (LOCAL_HOST, "localhost") else f"[{host}]" if ":" in host else host
    click.echo(f"builder: http://{shown}:{port}  ({how_to_stop})")
    if host not in (LOCAL_HOST, "localhost", "::1"):
        click.echo(f"warning: the builder has no sign-in yet; anyone who can reach {host}:{port} can change"
                   " the funnel", err=True)


def _builder_command(port: int, headless: bool, host: str) -> list[str]:
    app = BUILDER_APP
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", host,
            "--server.port", str(port), "--server.headless", str(headless).lower(),
            "--browser.gatherUsageStats", "false"]


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
        self.procs: list[subprocess.Popen] = []
        self.stopped_by: int | None = None
        self._previous: dict[int, Any] = {}
        self._groups: dict[int, bool] = {}

    def __enter__(self) -> _Children:
        for sig in self.STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopped_by = self.stopped_by or signum

    def start(self, argv: list[str], env: dict[str, str], *, own_group: bool = True) -> subprocess.Popen:
        if self.stopped_by:
            raise KeyboardInterrupt
        proc = subprocess.Popen(argv, env=env, process_group=0 if own_group else None,  # noqa: PLW1509
                                preexec_fn=functools.partial(_die_with_parent, os.getpid()))
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

    def _signal(self, proc: subprocess.Popen, sig: int) -> None:
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
@click.option("--load-only", is_flag=True, help="Only load the sample funnel and demo deals, then exit.")
@click.pass_context
@friendly
def demo(ctx: click.Context, port: int, host: str, tick_seconds: float, no_builder: bool, load_only: bool) -> None:
    """Load the sample funnel and demo deals, then run the engine and the builder until Ctrl-C.

    The builder listens on 127.0.0.1 unless --host says otherwise. SIGTERM or Ctrl-C stops the
    engine and the builder it started (exit 0).
    """
    from engine.cli.demo_data import load_demo

    if not (no_builder or load_only):
        _check_port(port, "demo", host)  # before anything starts, so a busy port leaves nothing running

    c = _conveyor(ctx)
    click.echo(f"database: {mask_database_url(ctx.obj['db'])} — {load_demo(c)}")
    c.close()
    if load_only:
        return
    env = _child_env(ctx.obj["db"])
    with _Children() as children:
        children.start([sys.executable, "-m", "engine.cli", "engine", "--tick-seconds", str(tick_seconds)], env)
        if not no_builder:
            children.start(_builder_command(port, True, host), env)
            _say_where(host, port, "Ctrl-C stops the engine and the builder")
        children.wait()
    failed = [code for code in children.returncodes() if code not in (0, None, -15, 143)]
    if failed or not children.stopped_by:  # a child that ended by itself is a failure of the demo
        sys.exit(1)


@main.command()
@click.option("--deals", type=click.IntRange(min=10), default=1_000_000, show_default=True,
              help="Open deals in the data set (the tick runs over all of them, ~1 in 1000 due).")
@click.option("--changes", type=click.IntRange(min=10), default=None,
              help="Changes through the API for the throughput figure (default: min(3000, deals/10)).")
@click.option("--designer/--no-designer", default=True, show_default=True,
              help="Also time the Designer page with a 30-stage, 300-rule funnel.")
@click.option("--load-seconds", type=click.FloatRange(min=0), default=60, show_default=True,
              help="Run the service load test this long on SQLite (1 engine) and PostgreSQL (2 engines); 0 skips it.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@friendly
def bench(deals: int, changes: int | None, designer: bool, load_seconds: float, as_json: bool) -> None:
    """Benchmark: business-rules run_all vs compiled vs vectorised, ticks, changes, peak RSS.

    Builds its own seeded data set in a temporary SQLite file (--db is not used).
    """
    from benchmarks import bench as bench_module

    def log(message: str) -> None:
        click.echo(f"[{time.strftime('%H:%M:%S')}] {message}", err=True)

    figures = bench_module.run(deals, changes=changes, designer=designer, load_seconds=load_seconds, log=log)
    click.echo(json.dumps(figures, indent=2) if as_json else bench_module.table(figures))


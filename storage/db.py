"""Opening databases: SQLAlchemy engines with the settings Conveyor relies on.

SQLite: WAL, busy timeout, ``synchronous=FULL``, foreign keys on, and ``BEGIN IMMEDIATE`` for every
write transaction (SQLAlchemy's pysqlite recipe) so writers queue on the lock instead of failing mid-way;
``read_transaction`` issues a plain (deferred) ``BEGIN`` so page reads never wait for a writer;
savepoints go to the driver as plain text (``_plain_savepoints``).
PostgreSQL: ``postgresql+psycopg://...`` with a connect timeout, TCP keepalives and server-side statement
and lock timeouts (``CONVEYOR_DB_CONNECT_TIMEOUT`` and friends, or libpq's own names in the URL query),
so a database that stops answering gives a clear error instead of hanging (docs/operations.md).
"""

from __future__ import annotations

import math
import os
import sqlite3
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from storage.errors import DatabaseUnavailable, StorageError
from storage.statements import run_driver_sql
from storage.urls import mask_database_url

DEFAULT_URL = "sqlite:///conveyor.db"
BUSY_TIMEOUT_MS = 30_000
#: Execution option marking a read-only connection: its transaction starts with a deferred BEGIN.
READ_ONLY_OPTION = "conveyor_read_only"

#: PostgreSQL limits, in seconds: (environment variable, default). 0 switches a limit off.
#: connect: the whole connection set-up (libpq ``connect_timeout``, at least 2 s);
#: statement / lock: server-side ``statement_timeout`` / ``lock_timeout`` of every session;
#: keepalive: idle seconds before TCP keepalive probes (then 3 probes 10 s apart) find a dead peer.
PG_SETTINGS = {
    "connect": ("CONVEYOR_DB_CONNECT_TIMEOUT", 10.0),
    "statement": ("CONVEYOR_DB_STATEMENT_TIMEOUT", 60.0),
    "lock": ("CONVEYOR_DB_LOCK_TIMEOUT", 10.0),
    "keepalive": ("CONVEYOR_DB_KEEPALIVE_IDLE", 30.0),
}


def database_url(explicit: str | None = None) -> str:
    """``--db`` wins, then ``CONVEYOR_DB``, then ``sqlite:///conveyor.db``."""
    return explicit or os.environ.get("CONVEYOR_DB") or DEFAULT_URL


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_path(url: str) -> str | None:
    """The file behind a SQLite URL, or None for in-memory / other databases."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return None
    return os.path.abspath(u.database)


def make_engine(url: str | None = None, *, echo: bool = False) -> Engine:
    url = database_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse text
        raise DatabaseUnavailable(f"not a database URL: {url!r} ({exc})") from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if parsed.get_backend_name() == "postgresql":
        return _postgres_engine(url, echo)
    return create_engine(url, echo=echo, pool_pre_ping=True, future=True)


def setting_seconds(name: str) -> float:
    """One of ``PG_SETTINGS`` from the environment: a number of seconds, 0 for no limit."""
    env, default = PG_SETTINGS[name]
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise DatabaseUnavailable(
            f"{env}={raw!r} is not a number of seconds (default {default:g})"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise DatabaseUnavailable(
            f"{env}={raw!r} must be 0 (no limit) or a positive number of seconds"
        )
    return value


def _postgres_engine(url: str, echo: bool) -> Engine:
    """PostgreSQL with every wait bounded; a value given in the URL query (libpq's names) wins."""
    parsed = make_url(url)
    query = parsed.query
    args: dict[str, Any] = {}
    connect = setting_seconds("connect")
    if "connect_timeout" not in query:
        # libpq counts whole seconds and treats 0 as "wait forever"; below 2 s it waits 2 s.
        args["connect_timeout"] = math.ceil(connect) if connect else 0
    keepalive = setting_seconds("keepalive")
    if keepalive and not any(k.startswith("keepalives") for k in query):
        args.update(
            keepalives=1,
            keepalives_idle=max(1, math.ceil(keepalive)),
            keepalives_interval=10,
            keepalives_count=3,
        )
    options = [
        f"-c {guc}={int(setting_seconds(name) * 1000)}"
        for name, guc in (("statement", "statement_timeout"), ("lock", "lock_timeout"))
        if guc not in str(query.get("options", ""))
    ]
    if options:
        # The URL's own options come last, so a -c given there wins over ours.
        args["options"] = " ".join(
            [*options, str(query["options"])] if "options" in query else options
        )
        if "options" in query:
            parsed = parsed.difference_update_query(["options"])
    engine = create_engine(parsed, echo=echo, pool_pre_ping=True, future=True, connect_args=args)
    shown = mask_database_url(parsed)
    waited = query.get("connect_timeout", args.get("connect_timeout"))

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        import psycopg

        if isinstance(context.original_exception, psycopg.errors.ConnectionTimeout):
            raise DatabaseUnavailable(
                f"the database {shown} did not answer within {waited} s (CONVEYOR_DB_CONNECT_TIMEOUT, or "
                "connect_timeout in the URL): is the server up, reachable and not overloaded?"
            ) from None

    return engine


def describe_error(exc: BaseException) -> str:
    """One line for an operator about a failed database call: what happened and which setting bounds it."""
    if isinstance(exc, StorageError):
        return str(exc)
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    code = getattr(orig, "sqlstate", None)
    if code == "55P03" or "lock timeout" in text:
        return (
            "the database did not grant a lock held by another session in time (CONVEYOR_DB_LOCK_TIMEOUT, "
            f"default {PG_SETTINGS['lock'][1]:g} s): a long transaction or a LOCK TABLE elsewhere? ({text})"
        )
    if code == "57014" and "statement timeout" in text:
        return (
            "the database did not finish a statement in time (CONVEYOR_DB_STATEMENT_TIMEOUT, default "
            f"{PG_SETTINGS['statement'][1]:g} s): it is overloaded or waiting on another session ({text})"
        )
    if "database is locked" in text:
        return (
            f"the SQLite database stayed locked by another writer for the whole busy timeout "
            f"({BUSY_TIMEOUT_MS // 1000} s) ({text})"
        )
    return f"{type(orig).__name__}: {text}"


def is_contention(exc: BaseException) -> bool:
    """A deadlock, lock timeout or serialisation failure: the database's doing, not the caller's work."""
    if not isinstance(exc, DBAPIError):
        return False
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40P01", "40001", "55P03") or "database is locked" in str(exc)


def bound_transaction(session: Session, seconds: float) -> None:
    """Limit every wait of the current transaction to ``seconds`` (PostgreSQL; SQLite keeps its busy timeout)."""
    if session.get_bind().dialect.name == "postgresql":
        ms = max(1, int(seconds * 1000))
        session.connection().exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
        session.connection().exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")


def _sqlite_engine(url: str, echo: bool) -> Engine:
    path = sqlite_path(url)
    memory = path is None
    kwargs: dict[str, Any] = {
        "echo": echo,
        "connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    }
    if memory:
        # One shared connection, so every session sees the same in-memory database.
        kwargs["poolclass"] = StaticPool
    if path is not None:
        parent = os.path.dirname(path) or "."
        if not os.path.isdir(parent):
            raise DatabaseUnavailable(
                f"cannot create SQLite database {path}: folder {parent} does not exist"
            )
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred BEGIN takes no lock until the first write; in WAL mode a reader then sees a
        # snapshot and never waits for (or blocks) the one writer. Writers keep BEGIN IMMEDIATE.
        # On the driver's cursor (storage.statements): SQLAlchemy's execution layer cost a change more
        # than the BEGIN itself; listeners still see it.
        read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
        run_driver_sql(conn, "BEGIN" if read_only else "BEGIN IMMEDIATE")

    if not echo:  # with echo on, every statement goes through SQLAlchemy's execution to be logged
        _plain_savepoints(engine)
    return engine


def _plain_savepoints(engine: Engine) -> None:
    """``SAVEPOINT``, ``RELEASE`` and ``ROLLBACK TO`` straight to the driver's connection.

    SQLAlchemy compiles these three clauses afresh every time (they are never cached): ~75 µs each
    against ~2 µs as plain text on the sqlite3 connection, and group commit runs every unit but the
    first of a group in a savepoint, ticks every deal. SQLAlchemy still tracks each savepoint as
    before (``Connection.begin_nested``, its events, a session's rollback to it); only the
    statement's way to the database changes, so it passes no ``before_cursor_execute`` hook. A
    driver error is raised as SQLAlchemy's, as ``Connection.execute`` would.
    """
    dialect = engine.dialect
    quote = dialect.identifier_preparer.quote

    def run(connection: Connection, sql: str) -> None:
        dbapi = connection.connection.dbapi_connection
        if dbapi is None:  # no live driver connection: let SQLAlchemy say why
            connection.exec_driver_sql(sql)
            return
        try:
            dbapi.execute(sql)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, (), exc, sqlite3.Error, dialect=dialect) from exc

    def savepoint(connection: Connection, name: str) -> None:
        run(connection, f"SAVEPOINT {quote(name)}")

    def release(connection: Connection, name: str) -> None:
        run(connection, f"RELEASE SAVEPOINT {quote(name)}")

    def rollback_to(connection: Connection, name: str) -> None:
        run(connection, f"ROLLBACK TO SAVEPOINT {quote(name)}")

    # The engine's own dialect object (one per engine): its three savepoint methods, replaced.
    dialect.do_savepoint = savepoint  # type: ignore[method-assign]
    dialect.do_release_savepoint = release  # type: ignore[method-assign]
    dialect.do_rollback_to_savepoint = rollback_to  # type: ignore[method-assign]


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


_read_factories: weakref.WeakKeyDictionary[Engine, sessionmaker[Session]] = (
    weakref.WeakKeyDictionary()
)


def read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reads only, on the same engine and pool (one factory per engine, kept)."""
    factory = _read_factories.get(engine)
    if factory is None:
        factory = sessionmaker(
            bind=engine.execution_options(**{READ_ONLY_OPTION: True}),
            autoflush=False,
            expire_on_commit=False,
            future=True,
        )
        event.listen(factory, "before_flush", _refuse_flush)
        _read_factories[engine] = factory
    return factory


def _refuse_flush(session: Session, _context: object, _instances: object) -> None:
    # A write through a read session would be rolled back silently; say so instead.
    raise StorageError("a read-only session cannot write; use a write transaction for changes")


@contextmanager
def read_transaction(factory: sessionmaker[Session] | Engine) -> Iterator[Session]:
    """One read-only unit of work: on SQLite a deferred ``BEGIN``, so it runs while a writer holds the lock.

    ``factory`` is a Conveyor's (write) session factory or an engine. Nothing is ever committed: the
    transaction is rolled back when the block ends, so an accidental change to a loaded row is dropped.
    Loaded objects stay readable after the block (the session is closed, not expired).
    """
    engine = factory if isinstance(factory, Engine) else factory.kw["bind"]
    session = read_session_factory(engine)()
    try:
        session.begin()
        yield session
    finally:
        session.close()  # rolls the transaction back without expiring what was loaded

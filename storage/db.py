"""Opening databases: SQLAlchemy engines with the settings Conveyor relies on.

SQLite: WAL, busy timeout, ``synchronous=FULL``, foreign keys on, and ``BEGIN IMMEDIATE`` for every
write transaction (SQLAlchemy's pysqlite recipe) so writers queue on the lock instead of failing mid-way;
``read_transaction`` issues a plain (deferred) ``BEGIN`` so page reads never wait for a writer.
PostgreSQL: ``postgresql+psycopg://...`` as given.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from storage.errors import DatabaseUnavailable, StorageError

DEFAULT_URL = "sqlite:///conveyor.db"
BUSY_TIMEOUT_MS = 30_000
#: Execution option marking a read-only connection: its transaction starts with a deferred BEGIN.
READ_ONLY_OPTION = "conveyor_read_only"


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
    return create_engine(url, echo=echo, pool_pre_ping=True, future=True)


def _sqlite_engine(url: str, echo: bool) -> Engine:
    memory = sqlite_path(url) is None
    kwargs: dict = {"echo": echo, "connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}}
    if memory:
        # One shared connection, so every session sees the same in-memory database.
        kwargs["poolclass"] = StaticPool
    else:
        path = sqlite_path(url)
        parent = os.path.dirname(path) or "."
        if not os.path.isdir(parent):
            raise DatabaseUnavailable(f"cannot create SQLite database {path}: folder {parent} does not exist")
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001
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
    def _on_begin(conn):  # noqa: ANN001
        # A deferred BEGIN takes no lock until the first write; in WAL mode a reader then sees a
        # snapshot and never waits for (or blocks) the one writer. Writers keep BEGIN IMMEDIATE.
        read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


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


_read_factories: weakref.WeakKeyDictionary[Engine, sessionmaker[Session]] = weakref.WeakKeyDictionary()


def read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reads only, on the same engine and pool (one factory per engine, kept)."""
    factory = _read_factories.get(engine)
    if factory is None:
        factory = sessionmaker(bind=engine.execution_options(**{READ_ONLY_OPTION: True}),
                               autoflush=False, expire_on_commit=False, future=True)
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

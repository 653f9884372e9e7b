"""Opening databases: SQLAlchemy engines with the settings Conveyor relies on.

SQLite: WAL, busy timeout, ``synchronous=FULL``, foreign keys on, and ``BEGIN IMMEDIATE`` for every
transaction (SQLAlchemy's pysqlite recipe) so writers queue on the lock instead of failing mid-way.
PostgreSQL: ``postgresql+psycopg://...`` as given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from storage.errors import DatabaseUnavailable

DEFAULT_URL = "sqlite:///conveyor.db"
BUSY_TIMEOUT_MS = 30_000


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
        conn.exec_driver_sql("BEGIN IMMEDIATE")

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

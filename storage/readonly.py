"""Opening a SQLite file that this process may not write: read-only engines for commands that only read.

A file (or its folder) without write permission, or on a read-only mount, is opened with SQLite's
``mode=ro``; a WAL database whose ``-shm`` cannot be created in a read-only folder is opened as
``immutable`` (nothing can be writing it there). Every transaction is a plain deferred ``BEGIN``.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from storage.db import BUSY_TIMEOUT_MS, sqlite_path

__all__ = ["read_only_engine", "sqlite_file_is_read_only"]


def sqlite_file_is_read_only(url: str) -> bool:
    """True when ``url`` names an existing SQLite file this process cannot write (file or folder)."""
    path = sqlite_path(url)
    if path is None or not os.path.isfile(path):
        return False
    folder = os.path.dirname(path) or "."
    return not (os.access(path, os.W_OK) and os.access(folder, os.W_OK))


def read_only_engine(url: str) -> Engine:
    """An engine on the SQLite file behind ``url`` that can only read it."""
    path = sqlite_path(url)
    if path is None:
        raise ValueError(f"not a SQLite file URL: {url!r}")
    uri = f"file:{quote(path)}?mode=ro"

    def connect() -> sqlite3.Connection:
        con = sqlite3.connect(
            uri,
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
            isolation_level=None,
        )
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return con
        except sqlite3.OperationalError:
            # A WAL file in a folder we cannot write: its -shm cannot be made, so read it as immutable.
            con.close()
            return sqlite3.connect(
                f"{uri}&immutable=1",
                uri=True,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
                isolation_level=None,
            )

    engine = create_engine("sqlite://", creator=connect, poolclass=NullPool, future=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine

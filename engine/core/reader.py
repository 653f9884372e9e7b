"""A ``Conveyor`` for commands that only read (``status``, ``versions``, ``actions``, ``export``).

Every session is a read-only one (a deferred ``BEGIN`` on SQLite, never committed), no migration runs
when the schema is current, and a SQLite file this process cannot write is still read: opened with
``mode=ro``, refused with a clear message only when its schema is out of date.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from engine.core.conveyor import Conveyor
from storage.db import sqlite_path
from storage.errors import StorageError
from storage.migrate import current_revision, head_revision
from storage.readonly import read_only_engine, sqlite_file_is_read_only

__all__ = ["ReadOnlyConveyor", "open_reader"]


class ReadOnlyConveyor(Conveyor):
    """The same API for reads; every transaction is a read-only one (it refuses to flush)."""

    def __init__(self, db: str | Engine | None = None, **kwargs: Any):
        super().__init__(db, read_only=True, **kwargs)


def open_reader(url: str, **kwargs: Any) -> ReadOnlyConveyor:
    """A read-only Conveyor on ``url``; ``kwargs`` as for ``Conveyor`` (a provider, say)."""
    if sqlite_file_is_read_only(url):
        engine = read_only_engine(url)
        try:
            revision, head = current_revision(engine), head_revision()
        except Exception:
            engine.dispose()
            raise
        if revision != head:
            engine.dispose()
            raise StorageError(
                f"the database {sqlite_path(url)} is read-only and its schema is out of date"
                f" (revision {revision or 'none'}, this Conveyor needs {head}): run `conveyor init`"
                " once with write access to upgrade it"
            )
        return ReadOnlyConveyor(engine, migrate=False, **kwargs)
    # Writable: a schema that is current is left alone (``upgrade`` only reads the revision then).
    return ReadOnlyConveyor(url, **kwargs)

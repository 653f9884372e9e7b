"""A ``Conveyor`` for commands that only read (``status``, ``versions``, ``actions``, ``export``).

Every session is a read-only one (a deferred ``BEGIN`` on SQLite, never committed), no migration runs
when the schema is current, and a SQLite file this process cannot write is still read: opened with
``mode=ro``, refused with a clear message only when its schema is out of date.
"""

from __future__ import annotations

from engine.core.conveyor import Conveyor
from storage.errors import StorageError
from storage.migrate import current_revision, head_revision
from storage.readonly import read_only_engine, sqlite_file_is_read_only

__all__ = ["ReadOnlyConveyor", "open_reader"]


class ReadOnlyConveyor(Conveyor):
    """The same API for reads; every session is ``Conveyor.read_session`` (it refuses to flush)."""

    def session(self):  # noqa: ANN201 - context manager of one read-only transaction
        return self.read_session()


def open_reader(url: str, **kwargs: object) -> ReadOnlyConveyor:
    """A read-only Conveyor on ``url``; ``kwargs`` as for ``Conveyor`` (a provider, say)."""
    from storage.db import sqlite_path

    if sqlite_file_is_read_only(url):
        engine = read_only_engine(url)
        try:
            revision, head = current_revision(engine), head_revision()
        except Exception:
            engine.dispose()
            raise
        if revision != head:
            engine.dispose()
            raise StorageError(f"the database {sqlite_path(url)} is read-only and its schema is out of date"
                               f" (revision {revision or 'none'}, this Conveyor needs {head}): run `conveyor init`"
                               " once with write access to upgrade it")
        return ReadOnlyConveyor(engine, migrate=False, **kwargs)
    # Writable: a schema that is current is left alone (``upgrade`` only reads the revision then).
    return ReadOnlyConveyor(url, **kwargs)

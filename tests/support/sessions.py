"""ORM sessions on a Conveyor's database, for tests that look at (or set up) rows directly.

``Conveyor`` has no public session: doors go through its methods. A test opens its own, on the same
engine, with the same due-time flush hook as the engine's own sessions.
"""

from __future__ import annotations

import weakref
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.core import timers
from storage.db import read_transaction, session_factory, transaction

_factories: weakref.WeakKeyDictionary[Engine, sessionmaker[Session]] = weakref.WeakKeyDictionary()


def db_session(conveyor: Any) -> AbstractContextManager[Session]:
    """One write transaction on ``conveyor``'s database (commit on success)."""
    factory = _factories.get(conveyor.engine)
    if factory is None:
        factory = _factories[conveyor.engine] = session_factory(conveyor.engine)
        timers.install(factory)
    return transaction(factory)


def db_read_session(conveyor: Any) -> AbstractContextManager[Session]:
    """One read-only transaction on ``conveyor``'s database (deferred BEGIN on SQLite, never commits)."""
    return read_transaction(conveyor.engine)

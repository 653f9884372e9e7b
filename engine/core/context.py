"""What the core's services and the outbox share: one database, its sessions, the clock, the engine id.

Built once by ``Conveyor`` and handed to each service at construction; no door reaches it. A
read-only context (``read_only=True``) opens read-only transactions only, so a change made through
it fails loudly instead of vanishing.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.core import timers
from storage.db import read_transaction, session_factory, transaction

__all__ = ["Context"]


class Context:
    """One database (engine and session factory), the injected clock and this process's engine id."""

    def __init__(self, engine: Engine, clock: Clock, engine_id: str, *, read_only: bool = False):
        self.engine = engine
        self.clock = clock
        self.engine_id = engine_id
        self.read_only = read_only
        self._sessions = session_factory(engine)
        timers.install(self._sessions)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def transaction(self) -> AbstractContextManager[Session]:
        """One unit of work (commit on success); read-only in a read-only context."""
        return read_transaction(self._sessions) if self.read_only else transaction(self._sessions)

    def read_transaction(self) -> AbstractContextManager[Session]:
        """For reads only: on SQLite it does not wait for a writer's lock; never commits."""
        return read_transaction(self._sessions)

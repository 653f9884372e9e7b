"""What the core's services and the outbox share: one database, its sessions, the clock, the engine id.

Built once by ``Conveyor`` and handed to each service at construction; no door reaches it. A
read-only context (``read_only=True``) opens read-only transactions only, so a change made through
it fails loudly instead of vanishing. Write transactions go through the group committer
(``engine.core.group_commit``): concurrent ones share one commit, each still decided on its own.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.core import timers
from engine.core.group_commit import GroupCommit
from storage.db import read_transaction, session_factory

__all__ = ["Context"]


class Context:
    """One database (engine and session factory), the injected clock and this process's engine id."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        engine_id: str,
        *,
        read_only: bool = False,
        group_commit: bool | None = None,
    ):
        """``group_commit``: share commits between concurrent write transactions; by default on SQLite
        (one writer: its commits are the bottleneck) and off on PostgreSQL (concurrent transactions
        run in parallel there, and a group would hold each deal's row lock until its commit)."""
        self.engine = engine
        self.clock = clock
        self.engine_id = engine_id
        self.read_only = read_only
        self._sessions = session_factory(engine)
        timers.install(self._sessions)
        if group_commit is None:
            group_commit = engine.dialect.name == "sqlite"
        self.group_commit = GroupCommit(engine, self._sessions, enabled=group_commit)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def transaction(self) -> AbstractContextManager[Session]:
        """One unit of work (commit on success, durable before this returns); read-only in a read-only
        context. Concurrent callers are grouped into one commit (``GroupCommit``); each one's
        exception is its own, and a failed commit fails every caller of its group."""
        return (
            read_transaction(self._sessions) if self.read_only else self.group_commit.transaction()
        )

    def read_transaction(self) -> AbstractContextManager[Session]:
        """For reads only: on SQLite it does not wait for a writer's lock; never commits."""
        return read_transaction(self._sessions)

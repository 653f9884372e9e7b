"""The engine processes sharing this database: their heartbeats, their claims, what ``status`` reads.

The service (``engine.service``) records its life here; ``conveyor status`` reads it back with the
outbox's queue figures, in one read-only transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.core.context import Context
from storage import repositories as repo
from storage.db import bound_transaction

__all__ = ["Engines", "Heartbeat", "QueueSnapshot"]


@dataclass(frozen=True)
class Heartbeat:
    engine_id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    stopped_at: datetime | None
    last_tick_at: datetime | None
    last_tick_seconds: float | None
    last_tick_summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueSnapshot:
    """The outbox by status, its oldest runnable and unfinished actions, and every engine's heartbeat."""

    counts: dict[str, int]
    oldest_ready_at: datetime | None
    oldest_pending_at: datetime | None
    heartbeats: list[Heartbeat]


class Engines:
    """Heartbeats and claims of this process (``Context.engine_id``) and the others."""

    def __init__(self, context: Context):
        self._context = context

    def heartbeat(self, *, host: str, pid: int, started_at: datetime | None, **values: Any) -> None:
        """Record that this engine is alive now (``values``: the heartbeat's other columns)."""
        now = self._context.clock.now()
        with self._context.transaction() as s:
            repo.upsert_heartbeat(
                s,
                self._context.engine_id,
                host=host,
                pid=pid,
                started_at=started_at or now,
                seen_at=now,
                **values,
            )

    def take_back_leases(self, now: datetime) -> int:
        """Make every 'sending' lease run out now (SQLite start-up: the engine lock proves its holder died)."""
        with self._context.transaction() as s:
            return repo.expire_leases(s, now)

    def record_stop(
        self, *, host: str, pid: int, started_at: datetime | None, within_seconds: float
    ) -> int:
        """Hand back this engine's claims and record its stop, every wait bounded; returns the claims released."""
        now = self._context.clock.now()
        with self._context.transaction() as s:
            bound_transaction(s, within_seconds)
            released = repo.release_claims(s, self._context.engine_id, now)
            repo.upsert_heartbeat(
                s,
                self._context.engine_id,
                host=host,
                pid=pid,
                started_at=started_at or now,
                seen_at=now,
                stopped_at=now,
            )
            return released

    def snapshot(self, now: datetime) -> QueueSnapshot:
        """Read-only: a deferred transaction on SQLite, so it answers while a writer holds the lock."""
        with self._context.read_transaction() as s:
            return QueueSnapshot(
                counts=repo.outbox_counts(s),
                oldest_ready_at=repo.oldest_ready(s, now),
                oldest_pending_at=repo.oldest_pending(s, now),
                heartbeats=[
                    Heartbeat(
                        b.engine_id,
                        b.host,
                        b.pid,
                        b.started_at,
                        b.seen_at,
                        b.stopped_at,
                        b.last_tick_at,
                        b.last_tick_seconds,
                        dict(b.last_tick_summary or {}),
                    )
                    for b in repo.list_heartbeats(s)
                ],
            )

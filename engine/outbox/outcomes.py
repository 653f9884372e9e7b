"""How one attempt at an outbox row ends: the retry policy, the row's new state, what is reported."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import object_session

from engine.errors import ConveyorError
from engine.text import storable
from storage import repositories as repo
from storage.models import OutboxAction

__all__ = [
    "DEFAULT_POLICY",
    "MAX_ERROR",
    "SKIPPED",
    "Executed",
    "RetryPolicy",
    "defer",
    "error_text",
    "finish",
]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    lease: timedelta = timedelta(seconds=120)

    def delay(self, attempts: int, key: str) -> timedelta:
        """Exponential backoff with a jitter that is random across rows but repeatable for one row."""
        raw = min(self.base * (1 << max(attempts - 1, 0)), self.cap)
        spread = (
            int.from_bytes(hashlib.sha256(f"{key}:{attempts}".encode()).digest()[:4], "big") / 2**32
        )
        return raw * (1 - self.jitter + 2 * self.jitter * spread)


#: The policy the dispatcher uses unless told otherwise.
DEFAULT_POLICY = RetryPolicy()


@dataclass
class Executed:
    """One attempt at one outbox row, as the simulator and the service log report it."""

    outbox_id: int
    deal_id: int | None  # None: a manager's digest
    rule_id: str
    action: str
    status: str  # done | failed | dead
    at: datetime
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


#: ``last_error`` of an action not run because an earlier action of its firing is dead.
SKIPPED = "skipped: "


#: Longest ``last_error`` kept (a driver's error may quote a whole SQL statement and its values).
MAX_ERROR = 1_000


def finish(
    row: OutboxAction,
    status: str,
    now: datetime,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    policy: RetryPolicy,
) -> str:
    """End one attempt at ``row``: done, failed (due again after the policy's backoff) or dead."""
    row.updated_at = now
    row.claimed_by = None
    row.lease_until = None
    if status == "done":
        row.status, row.result, row.done_at, row.last_error = "done", result, now, None
        return "done"
    # Escaped and bounded: an error quoting the bad value must not be refused by the database too.
    row.last_error = error = None if error is None else storable(error, MAX_ERROR)
    if status == "dead" or row.attempts >= policy.max_attempts:
        row.status = "dead"
        # The rule's later actions may depend on this one (an SMS quoting the invoice number): they
        # end dead too, saying why; retrying this one queues them again (``retry``).
        session = object_session(row)
        if session is not None and row.firing_id is not None:  # a manager's message has no firing
            repo.skip_later_actions(
                session,
                row.firing_id,
                row.seq,
                f"{SKIPPED}earlier action {row.id} ({row.action}) is dead: {error}",
                now,
            )
        return "dead"
    row.status = "failed"
    row.next_attempt_at = now + policy.delay(row.attempts, row.idempotency_key)
    return "failed"


def defer(row: OutboxAction, now: datetime, seconds: float, error: str) -> str:
    """The gateway said "later" (429): back in the queue after its wait, the attempt not counted."""
    row.attempts = max(row.attempts - 1, 0)
    row.status, row.claimed_by, row.lease_until, row.updated_at = "pending", None, None, now
    row.next_attempt_at = now + timedelta(seconds=seconds)
    row.last_error = storable(error, MAX_ERROR)
    return "pending"


def error_text(exc: BaseException) -> str:
    """One line saying what went wrong, for ``last_error`` and logs (a driver's own words, not its SQL)."""
    if isinstance(exc, ConveyorError):
        return str(exc)
    cause = (
        getattr(exc, "orig", None) or exc
    )  # SQLAlchemy wraps the driver's error with SQL and values
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__

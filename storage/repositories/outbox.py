"""The outbox: rows queued by firings, claimed and leased by dispatchers, and the queue's health."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from storage.models import Deal, Firing, OutboxAction
from storage.repositories.common import RETRYABLE, TERMINAL, dialect_name, rowcount, table_of

_OUTBOX = table_of(OutboxAction)
_ADD_OUTBOX = _OUTBOX.insert()


def add_outbox_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert outbox rows (one executemany; no ORM objects: a tick may queue thousands)."""
    if rows:
        session.connection().execute(_ADD_OUTBOX, rows)


#: The earlier rows of a firing, as a plain table alias built (with its columns) at import. Not an ORM
#: ``aliased()`` shared between threads: that one adapts its columns lazily, and message workers
#: starting together could be handed the *unaliased* column (SQLAlchemy warns "Did not locate an
#: expression in selectable for attribute 'seq'"). The claim's ``outbox_1.seq < outbox.seq`` then
#: compiled as ``outbox.seq < outbox.seq``, never true, for the engine's whole life: on PostgreSQL
#: it sent SMS before their invoices were numbered (tests/outbox/test_claim_threads.py). A fresh
#: ``aliased()`` per call would be safe, but re-adapting its columns was half the cost of an idle tick.
_EARLIER = _OUTBOX.alias("earlier")
_EARLIER_COLUMNS = _EARLIER.c  # populated now, in the importing thread


def _unfinished_before(firing_id: Any, seq: Any, earlier: Any = _OUTBOX.c) -> ColumnElement[bool]:
    """An action of firing ``firing_id`` before ``seq`` is not finished yet (neither done nor dead):
    the one condition that keeps a rule's actions in order, for the claim and for its second check.
    ``earlier``: the columns the earlier rows are read from (the claim reads them through an alias)."""
    return exists().where(
        earlier.firing_id == firing_id,
        earlier.seq < seq,
        earlier.status.not_in(TERMINAL),
    )


def _ready_clause(now: datetime) -> ColumnElement[bool]:
    blocked = _unfinished_before(OutboxAction.firing_id, OutboxAction.seq, _EARLIER_COLUMNS)
    due = or_(
        and_(OutboxAction.status.in_(RETRYABLE), OutboxAction.next_attempt_at <= now),
        and_(OutboxAction.status == "sending", OutboxAction.lease_until < now),
    )
    return and_(due, ~blocked)


def claim_ready(
    session: Session, now: datetime, limit: int, kind: str | None = None
) -> list[OutboxAction]:
    """Rows ready to run, locked for this transaction (``SKIP LOCKED`` on PostgreSQL).

    Ready: pending or failed and due, or sending with an expired lease (a crashed dispatcher), and
    every earlier action of the same firing finished (actions of one rule run in order).
    """
    q = select(OutboxAction).where(_ready_clause(now)).order_by(OutboxAction.id).limit(limit)
    if kind:
        q = q.where(OutboxAction.kind == kind)
    if dialect_name(session) == "postgresql":
        q = q.with_for_update(skip_locked=True, of=OutboxAction)
    return list(session.scalars(q))


def lock_outbox(session: Session, outbox_id: int) -> OutboxAction | None:
    q = select(OutboxAction).where(OutboxAction.id == outbox_id)
    if dialect_name(session) == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return session.scalar(q)


def earlier_results(session: Session, firing_id: int, seq: int) -> list[tuple[str, dict[str, Any]]]:
    """(action, result) of the done actions before ``seq`` of one firing, in order."""
    q = (
        select(OutboxAction.action, OutboxAction.result)
        .where(
            OutboxAction.firing_id == firing_id,
            OutboxAction.seq < seq,
            OutboxAction.status == "done",
        )
        .order_by(OutboxAction.seq)
    )
    return [(action, result or {}) for action, result in session.execute(q)]


def earlier_unfinished(session: Session, firing_id: int, seq: int) -> bool:
    """Whether an action before ``seq`` of one firing is not finished yet (neither done nor dead)."""
    return bool(session.scalar(select(_unfinished_before(firing_id, seq))))


def skip_later_actions(
    session: Session, firing_id: int, seq: int, error: str, now: datetime
) -> int:
    """Mark the not-yet-run actions after ``seq`` of one firing dead with ``error`` (an earlier one died)."""
    res = session.execute(
        update(OutboxAction)
        .where(
            OutboxAction.firing_id == firing_id,
            OutboxAction.seq > seq,
            OutboxAction.status.in_(RETRYABLE),
        )
        .values(status="dead", last_error=error, updated_at=now, claimed_by=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(res)


def requeue_skipped_actions(
    session: Session, firing_id: int, seq: int, prefix: str, now: datetime
) -> int:
    """Put back in the queue the actions after ``seq`` of one firing that were skipped (``prefix``)."""
    res = session.execute(
        update(OutboxAction)
        .where(
            OutboxAction.firing_id == firing_id,
            OutboxAction.seq > seq,
            OutboxAction.status == "dead",
            OutboxAction.last_error.startswith(prefix, autoescape=True),
        )
        .values(status="pending", attempts=0, next_attempt_at=now, updated_at=now, last_error=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(res)


def release_claims(session: Session, engine_id: str, now: datetime) -> int:
    """Give back 'sending' leases held by ``engine_id`` (clean shutdown): they become due now."""
    res = session.execute(
        update(OutboxAction)
        .where(OutboxAction.claimed_by == engine_id, OutboxAction.status == "sending")
        .values(lease_until=now, claimed_by=None)
    )
    return rowcount(res)


def expire_leases(session: Session, now: datetime) -> int:
    """Make every 'sending' lease run out now (SQLite start-up: the engine lock proves its holder died)."""
    res = session.execute(
        update(OutboxAction)
        .where(OutboxAction.status == "sending", OutboxAction.lease_until > now)
        .values(lease_until=now, claimed_by=None)
    )
    return rowcount(res)


def oldest_ready(session: Session, now: datetime) -> datetime | None:
    """When the longest-waiting action that could run now became due (pending/failed/expired lease)."""
    return session.scalar(select(func.min(OutboxAction.next_attempt_at)).where(_ready_clause(now)))


def outbox_counts(session: Session) -> dict[str, int]:
    return dict(
        session.execute(
            select(OutboxAction.status, func.count()).group_by(OutboxAction.status)
        ).all()
    )


def outbox_status_counts(session: Session, funnel_id: str | None = None) -> dict[str, int]:
    q = select(OutboxAction.status, func.count()).group_by(OutboxAction.status)
    if funnel_id:
        q = q.join(Deal, Deal.id == OutboxAction.deal_id).where(Deal.funnel_id == funnel_id)
    return dict(session.execute(q).all())


def oldest_pending(session: Session, now: datetime | None = None) -> datetime | None:
    """When the oldest action not yet done or dead was queued. With ``now``, one never tried that
    waits for a later time on purpose (a delayed notification to a manager) does not count."""
    q = select(func.min(OutboxAction.created_at)).where(OutboxAction.status.not_in(TERMINAL))
    if now is not None:
        q = q.where(
            ~and_(
                OutboxAction.status == "pending",
                OutboxAction.attempts == 0,
                OutboxAction.next_attempt_at > now,
            )
        )
    return session.scalar(q)


def list_outbox(
    session: Session,
    *,
    statuses: Iterable[str] | None = None,
    deal_id: int | None = None,
    limit: int = 500,
) -> list[tuple[OutboxAction, Firing]]:
    q = (
        select(OutboxAction, Firing)
        .join(Firing, Firing.id == OutboxAction.firing_id)
        .order_by(OutboxAction.id.desc())
        .limit(limit)
    )
    if statuses:
        q = q.where(OutboxAction.status.in_(list(statuses)))
    if deal_id is not None:
        q = q.where(OutboxAction.deal_id == deal_id)
    return [(action, firing) for action, firing in session.execute(q)]


def list_outbox_log(
    session: Session,
    *,
    statuses: Iterable[str] | None = None,
    funnel_id: str | None = None,
    deal_id: int | None = None,
    limit: int = 500,
) -> list[tuple[OutboxAction, Firing | None, Deal | None]]:
    """The engine's action log, newest first, with the firing (rule, reason) and the deal.

    Messages to managers are in it too: they belong to no firing, and a digest to no deal (``None``);
    a funnel or deal filter keeps those about one of its deals.
    """
    q = (
        select(OutboxAction, Firing, Deal)
        .outerjoin(Firing, Firing.id == OutboxAction.firing_id)
        .outerjoin(Deal, Deal.id == OutboxAction.deal_id)
        .order_by(OutboxAction.id.desc())
        .limit(limit)
    )
    if statuses:
        q = q.where(OutboxAction.status.in_(list(statuses)))
    if funnel_id:
        q = q.where(Deal.funnel_id == funnel_id)
    if deal_id is not None:
        q = q.where(OutboxAction.deal_id == deal_id)
    return [(action, firing, deal) for action, firing, deal in session.execute(q)]


def get_outbox(session: Session, outbox_id: int) -> OutboxAction | None:
    return session.get(OutboxAction, outbox_id)

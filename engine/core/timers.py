"""Due-time index for incremental ticks: each open deal carries ``deals.next_due_at`` (indexed).

``Conveyor._evaluate`` stores, in the same transaction as the change, the first instant at which a
not-yet-fired rule of the deal may turn true with time alone (``CompiledRuleSet.next_due``). A tick
reads ``next_due_at <= now`` (an index range scan), evaluates only those deals and stores their next
instant, so its cost follows the deals that became due, not the deals that exist. A deal changed
without being evaluated (an ORM change outside ``_evaluate``, e.g. the dispatcher assigning a
manager) is marked due at once by a flush hook, so the next tick looks at it, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, event, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from storage.models import Deal
from storage.repositories.common import rowcount, table_of

#: "Due now, whatever now is": set on deals whose state changed without an evaluation.
DUE_AT_ONCE = datetime(1970, 1, 1, tzinfo=UTC)
#: Columns whose change does not alter what a rule can read.
_NEUTRAL = frozenset({"next_due_at", "updated_at"})
_BUSY = "conveyor.evaluating"
_DEALS = table_of(Deal)
#: One statement for a whole batch of due instants (an executemany; ``b_id``: ``id`` names the column).
_STORE_DUE = (
    update(_DEALS)
    .where(_DEALS.c.id == bindparam("b_id"))
    .values(next_due_at=bindparam("due", type_=_DEALS.c.next_due_at.type))
)


def due_deal_ids(s: Session, now: datetime, limit: int) -> list[int]:
    """Ids of deals due at ``now``, earliest first (uses ``ix_deals_next_due_at``)."""
    q = (
        select(Deal.id)
        .where(Deal.next_due_at <= now)
        .order_by(Deal.next_due_at, Deal.id)
        .limit(limit)
    )
    return list(s.scalars(q))


def next_due_instant(s: Session) -> datetime | None:
    """The earliest stored due instant (what a scheduler may sleep until)."""
    return s.scalar(
        select(Deal.next_due_at)
        .where(Deal.next_due_at.is_not(None))
        .order_by(Deal.next_due_at)
        .limit(1)
    )


def rearm_funnel(s: Session, funnel_id: str, now: datetime) -> int:
    """Mark every open deal of a funnel due at ``now`` (a new active version: its timers differ).

    One UPDATE per activation; the next tick evaluates those deals under the new rules and stores
    their new due instants. Returns the number of deals marked.
    """
    result = s.execute(
        update(Deal)
        .where(Deal.funnel_id == funnel_id, Deal.closed.is_(False))
        .values(next_due_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def _changed_outside_evaluation(s: Session, deal: Deal) -> bool:
    # committed_state holds the attributes set since the last flush (an attribute set to its old
    # value counts too: at worst one extra evaluation).
    changed = instance_state(deal).committed_state
    if "next_due_at" in changed:
        return False
    return any(key not in _NEUTRAL for key in changed)


def _before_flush(s: Session, _context: Any, _instances: Any) -> None:
    busy = s.info.get(_BUSY, ())
    for obj in s.new:
        if (
            isinstance(obj, Deal)
            and id(obj) not in busy
            and obj.next_due_at is None
            and not obj.closed
        ):
            obj.next_due_at = DUE_AT_ONCE
    for obj in s.dirty:
        if isinstance(obj, Deal) and id(obj) not in busy and _changed_outside_evaluation(s, obj):
            obj.next_due_at = None if obj.closed else DUE_AT_ONCE


def store_due(s: Session, deals: Iterable[Deal]) -> int:
    """Write the due instants decided for a tick's batch in one executemany; returns the rows written.

    Only ``next_due_at`` is written, in the order given (a tick's batch is in id order, so the rows
    land page after page), and a deal whose instant did not change is not written at all. A deal with
    other pending changes is left to the flush, which writes its whole change together.
    """
    rows = []
    for deal in deals:
        pending = instance_state(deal).committed_state
        if "next_due_at" not in pending or len(pending) > 1:
            continue
        due = deal.next_due_at
        if pending["next_due_at"] != due:
            rows.append({"b_id": deal.id, "due": due})
        set_committed_value(deal, "next_due_at", due)  # written (or unchanged): nothing to flush
    if rows:  # on the connection: no ORM statement machinery, no autoflush
        s.connection().execute(_STORE_DUE, rows)
    return len(rows)


def install(factory: sessionmaker[Session]) -> None:
    """Register the flush hook on a Conveyor's session factory (once)."""
    if not event.contains(factory, "before_flush", _before_flush):
        event.listen(factory, "before_flush", _before_flush)


def begin(s: Session, deal: Deal) -> None:
    """``_evaluate`` starts: its own flushes of ``deal`` are not changes without an evaluation."""
    s.info.setdefault(_BUSY, set()).add(id(deal))


def finish(s: Session, deal: Deal, due: datetime | None) -> None:
    """``_evaluate`` ends: store the deal's next due instant (None: nothing to wait for)."""
    deal.next_due_at = due
    s.info.get(_BUSY, set()).discard(id(deal))

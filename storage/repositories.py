"""Queries and writes, one function per question the engine asks. All take an open ``Session``.

Functions here never commit: the engine decides transaction boundaries (a change, its firings and
their outbox rows commit together).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from storage.models import (
    Base,
    Deal,
    DealEvent,
    DealSignal,
    EngineHeartbeat,
    Firing,
    Funnel,
    Invoice,
    Manager,
    Message,
    OutboxAction,
    RuleSetVersion,
    Task,
)

TERMINAL = ("done", "dead")
RETRYABLE = ("pending", "failed")


def _table(model: type[Base]) -> Table:
    """A mapped class's table, for Core statements (executemany without ORM bookkeeping)."""
    return cast(Table, model.__table__)


def _rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE (``Session.execute`` types its result as a plain ``Result``)."""
    return cast("CursorResult[Any]", result).rowcount or 0


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# -- funnels and versions ----------------------------------------------------------------------
def get_funnel(session: Session, funnel_id: str) -> Funnel | None:
    return session.get(Funnel, funnel_id)


def list_funnels(session: Session) -> list[Funnel]:
    return list(session.scalars(select(Funnel).order_by(Funnel.id)))


def ensure_funnel(session: Session, funnel_id: str, name: str, now: datetime) -> Funnel:
    funnel = session.get(Funnel, funnel_id)
    if funnel is None:
        funnel = Funnel(id=funnel_id, name=name, created_at=now)
        session.add(funnel)
        session.flush()
    else:
        funnel.name = name
    return funnel


def add_version(
    session: Session,
    funnel_id: str,
    document: str,
    fingerprint: str,
    comment: str,
    author: str,
    now: datetime,
) -> RuleSetVersion:
    last = session.scalar(
        select(func.max(RuleSetVersion.version)).where(RuleSetVersion.funnel_id == funnel_id)
    )
    row = RuleSetVersion(
        funnel_id=funnel_id,
        version=(last or 0) + 1,
        document=document,
        fingerprint=fingerprint,
        comment=comment,
        author=author,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def get_version(session: Session, version_id: int) -> RuleSetVersion | None:
    return session.get(RuleSetVersion, version_id)


def get_version_by_number(session: Session, funnel_id: str, version: int) -> RuleSetVersion | None:
    return session.scalar(
        select(RuleSetVersion).where(
            RuleSetVersion.funnel_id == funnel_id, RuleSetVersion.version == version
        )
    )


def list_versions(session: Session, funnel_id: str) -> list[RuleSetVersion]:
    return list(
        session.scalars(
            select(RuleSetVersion)
            .where(RuleSetVersion.funnel_id == funnel_id)
            .order_by(RuleSetVersion.version.desc())
        )
    )


# -- managers ----------------------------------------------------------------------------------
def add_manager(session: Session, name: str, phone: str = "") -> Manager:
    row = Manager(name=name, phone=phone, active=True)
    session.add(row)
    session.flush()
    return row


def get_manager_by_name(session: Session, name: str) -> Manager | None:
    return session.scalar(select(Manager).where(Manager.name == name))


def list_managers(session: Session, active_only: bool = False) -> list[Manager]:
    q = select(Manager).order_by(Manager.id)
    if active_only:
        q = q.where(Manager.active.is_(True))
    return list(session.scalars(q))


def open_deal_counts(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Deal.manager_id, func.count())
        .where(Deal.closed.is_(False), Deal.manager_id.is_not(None))
        .group_by(Deal.manager_id)
    ).all()
    return {m: c for m, c in rows if m is not None}


def next_manager_round_robin(session: Session) -> Manager | None:
    """Round robin over active managers (least recently assigned first), least-loaded on ties."""
    managers = list_managers(session, active_only=True)
    if not managers:
        return None
    load = open_deal_counts(session)
    return min(managers, key=lambda m: (m.assign_seq, load.get(m.id, 0), m.id))


def next_assign_seq(session: Session) -> int:
    return (session.scalar(select(func.max(Manager.assign_seq))) or 0) + 1


# -- deals -------------------------------------------------------------------------------------
def get_deal(session: Session, deal_id: int, *, for_update: bool = False) -> Deal | None:
    if for_update and _dialect(session) == "postgresql":
        return session.scalar(select(Deal).where(Deal.id == deal_id).with_for_update())
    return session.get(Deal, deal_id)


def get_deal_by_key(session: Session, key: str) -> Deal | None:
    return session.scalar(select(Deal).where(Deal.key == key))


def add_deal(session: Session, **values: Any) -> Deal:
    row = Deal(**values)
    session.add(row)
    session.flush()
    return row


def list_deals(
    session: Session,
    funnel_id: str | None = None,
    *,
    open_only: bool = False,
    limit: int | None = None,
) -> list[Deal]:
    q = select(Deal).order_by(Deal.id)
    if funnel_id:
        q = q.where(Deal.funnel_id == funnel_id)
    if open_only:
        q = q.where(Deal.closed.is_(False))
    if limit:
        q = q.limit(limit)
    return list(session.scalars(q))


def deals_by_ids(session: Session, ids: Sequence[int], *, skip_locked: bool = False) -> list[Deal]:
    """Deals by id. ``skip_locked`` (PostgreSQL; SQLite's single writer needs nothing): lock them for
    this transaction and leave out those another transaction holds — a tick must not evaluate (and
    then overwrite the next due time of) a deal that a change or another engine is writing."""
    if not ids:
        return []
    q = select(Deal).where(Deal.id.in_(ids)).order_by(Deal.id)
    if skip_locked and _dialect(session) == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return list(session.scalars(q))


def deals_referencing_stage(session: Session, funnel_id: str, stage: str) -> list[Deal]:
    return list(
        session.scalars(select(Deal).where(Deal.funnel_id == funnel_id, Deal.stage == stage))
    )


def deal_keys_in_stage(session: Session, funnel_id: str, stage: str, limit: int) -> list[str]:
    """Keys of the first ``limit`` deals (by id) in one stage of one funnel."""
    return list(
        session.scalars(
            select(Deal.key)
            .where(Deal.funnel_id == funnel_id, Deal.stage == stage)
            .order_by(Deal.id)
            .limit(limit)
        )
    )


def next_deal_number(session: Session) -> int:
    return (session.scalar(select(func.max(Deal.id))) or 0) + 1


def manager_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Manager.id, Manager.name)).all())


# -- history -----------------------------------------------------------------------------------
def add_event(
    session: Session, deal_id: int, at: datetime, kind: str, actor: str, data: dict[str, Any]
) -> None:
    session.add(DealEvent(deal_id=deal_id, at=at, kind=kind, actor=actor, data=data))


def list_events(
    session: Session, deal_id: int | None = None, kinds: Iterable[str] | None = None
) -> list[DealEvent]:
    q = select(DealEvent).order_by(DealEvent.at, DealEvent.id)
    if deal_id is not None:
        q = q.where(DealEvent.deal_id == deal_id)
    if kinds:
        q = q.where(DealEvent.kind.in_(list(kinds)))
    return list(session.scalars(q))


# -- declared events (signals) -------------------------------------------------------------------
def add_signal(
    session: Session,
    deal_id: int,
    name: str,
    at: datetime,
    stage_visit: int,
    data: dict[str, Any],
    created_at: datetime,
) -> None:
    session.add(
        DealSignal(
            deal_id=deal_id,
            name=name,
            at=at,
            stage_visit=stage_visit,
            data=data,
            created_at=created_at,
        )
    )


def add_signals_bulk(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many signal rows in one statement (imports)."""
    if rows:
        session.execute(_table(DealSignal).insert(), list(rows))


def list_signals(session: Session, deal_id: int, name: str | None = None) -> list[DealSignal]:
    """A deal's declared-event occurrences, oldest first (``ix_deal_signals_deal_name_at``)."""
    q = select(DealSignal).where(DealSignal.deal_id == deal_id)
    if name is not None:
        q = q.where(DealSignal.name == name)
    return list(session.scalars(q.order_by(DealSignal.at, DealSignal.id)))


def latest_signal_at(session: Session, deal_ids: Sequence[int], name: str) -> dict[int, datetime]:
    """For each of ``deal_ids`` that had ``name`` happen, its latest instant (audits, reports)."""
    if not deal_ids:
        return {}
    q = (
        select(DealSignal.deal_id, func.max(DealSignal.at))
        .where(DealSignal.deal_id.in_(list(deal_ids)), DealSignal.name == name)
        .group_by(DealSignal.deal_id)
    )
    return {deal_id: at for deal_id, at in session.execute(q)}


# -- firings -----------------------------------------------------------------------------------
def fired_occurrences(session: Session, deal_id: int) -> set[tuple[str, str]]:
    return set(
        session.execute(
            select(Firing.rule_id, Firing.occurrence).where(Firing.deal_id == deal_id)
        ).all()
    )


def fired_occurrences_many(
    session: Session, deal_ids: Sequence[int]
) -> dict[int, set[tuple[str, str]]]:
    out: dict[int, set[tuple[str, str]]] = {d: set() for d in deal_ids}
    if deal_ids:
        for deal_id, rule_id, occ in session.execute(
            select(Firing.deal_id, Firing.rule_id, Firing.occurrence).where(
                Firing.deal_id.in_(list(deal_ids))
            )
        ):
            out[deal_id].add((rule_id, occ))
    return out


def insert_firing(session: Session, **values: Any) -> int | None:
    """Insert a firing unless one exists for (deal, rule, occurrence); return its id or None.

    The unique constraint decides, so two engines (or a re-run) can never both fire one occurrence.
    """
    return session.execute(_firing_insert(_dialect(session)), values).scalar()


def insert_firings(session: Session, rows: list[dict[str, Any]]) -> dict[tuple[int, str, str], int]:
    """Insert many firings in one statement, skipping (deal, rule, occurrence) already recorded.

    Returns the ids of the rows inserted, by (deal_id, rule_id, occurrence); the unique constraint
    decides as in ``insert_firing``.
    """
    if not rows:
        return {}
    result = session.execute(_firing_insert(_dialect(session), many=True), rows)
    return {(deal_id, rule_id, occ): firing_id for firing_id, deal_id, rule_id, occ in result}


def add_outbox_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert outbox rows (one executemany; no ORM objects: a tick may queue thousands)."""
    if rows:
        session.execute(_table(OutboxAction).insert(), rows)


_FIRING_INSERTS: dict[tuple[str, bool], Any] = {}


def _firing_insert(dialect: str, many: bool = False) -> Any:
    # One Core statement per dialect, values passed as parameters: compiled once and no ORM bulk
    # machinery (a ``.values(**values)`` statement per call re-derives its cache key every time).
    stmt = _FIRING_INSERTS.get((dialect, many))
    if stmt is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        t = _table(Firing)
        returning = (t.c.id, t.c.deal_id, t.c.rule_id, t.c.occurrence) if many else (t.c.id,)
        stmt = (
            insert(t)
            .on_conflict_do_nothing(index_elements=["deal_id", "rule_id", "occurrence"])
            .returning(*returning)
        )
        _FIRING_INSERTS[(dialect, many)] = stmt
    return stmt


def list_firings(
    session: Session, deal_id: int | None = None, limit: int | None = None
) -> list[Firing]:
    q = select(Firing).order_by(Firing.fired_at.desc(), Firing.id.desc())
    if deal_id is not None:
        q = q.where(Firing.deal_id == deal_id)
    if limit:
        q = q.limit(limit)
    return list(session.scalars(q))


# -- outbox ------------------------------------------------------------------------------------
#: Built once: a fresh ``aliased()`` per call re-adapts its columns on every dispatch round, which
#: was half the cost of an idle tick.
_EARLIER = aliased(OutboxAction)


def _ready_clause(now: datetime) -> ColumnElement[bool]:
    earlier = _EARLIER
    blocked = exists().where(
        earlier.firing_id == OutboxAction.firing_id,
        earlier.seq < OutboxAction.seq,
        earlier.status.not_in(TERMINAL),
    )
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
    if _dialect(session) == "postgresql":
        q = q.with_for_update(skip_locked=True, of=OutboxAction)
    return list(session.scalars(q))


def lock_outbox(session: Session, outbox_id: int) -> OutboxAction | None:
    q = select(OutboxAction).where(OutboxAction.id == outbox_id)
    if _dialect(session) == "postgresql":
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
    return _rowcount(res)


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
    return _rowcount(res)


def release_claims(session: Session, engine_id: str, now: datetime) -> int:
    """Give back 'sending' leases held by ``engine_id`` (clean shutdown): they become due now."""
    res = session.execute(
        update(OutboxAction)
        .where(OutboxAction.claimed_by == engine_id, OutboxAction.status == "sending")
        .values(lease_until=now, claimed_by=None)
    )
    return _rowcount(res)


def outbox_counts(session: Session) -> dict[str, int]:
    return dict(
        session.execute(
            select(OutboxAction.status, func.count()).group_by(OutboxAction.status)
        ).all()
    )


def oldest_pending(session: Session) -> datetime | None:
    return session.scalar(
        select(func.min(OutboxAction.created_at)).where(OutboxAction.status.not_in(TERMINAL))
    )


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


def get_outbox(session: Session, outbox_id: int) -> OutboxAction | None:
    return session.get(OutboxAction, outbox_id)


# -- tasks, messages, invoices -----------------------------------------------------------------
def add_task(session: Session, **values: Any) -> Task:
    row = Task(**values)
    session.add(row)
    session.flush()
    return row


def get_task(session: Session, task_id: int) -> Task | None:
    return session.get(Task, task_id)


def list_tasks(
    session: Session,
    *,
    status: str | None = None,
    deal_id: int | None = None,
    manager_id: int | None = None,
) -> list[Task]:
    q = select(Task).order_by(Task.due_at, Task.id)
    if status:
        q = q.where(Task.status == status)
    if deal_id is not None:
        q = q.where(Task.deal_id == deal_id)
    if manager_id is not None:
        q = q.where(Task.manager_id == manager_id)
    return list(session.scalars(q))


def message_for_outbox(session: Session, outbox_id: int) -> Message | None:
    return session.scalar(select(Message).where(Message.outbox_id == outbox_id))


def add_message(session: Session, **values: Any) -> Message:
    row = Message(**values)
    session.add(row)
    session.flush()
    return row


def list_messages(session: Session, deal_id: int | None = None) -> list[Message]:
    q = select(Message).order_by(Message.id)
    if deal_id is not None:
        q = q.where(Message.deal_id == deal_id)
    return list(session.scalars(q))


def next_invoice_seq(session: Session) -> int:
    lock_invoice_numbering(session)  # several engines on PostgreSQL: max+1 must not race
    return (session.scalar(select(func.max(Invoice.seq))) or 0) + 1


def add_invoice(session: Session, **values: Any) -> Invoice:
    row = Invoice(**values)
    session.add(row)
    session.flush()
    return row


def list_invoices(session: Session, deal_id: int | None = None) -> list[Invoice]:
    q = select(Invoice).order_by(Invoice.seq)
    if deal_id is not None:
        q = q.where(Invoice.deal_id == deal_id)
    return list(session.scalars(q))


# -- engine health -----------------------------------------------------------------------------
def upsert_heartbeat(session: Session, engine_id: str, **values: Any) -> None:
    row = session.get(EngineHeartbeat, engine_id)
    if row is None:
        session.add(EngineHeartbeat(engine_id=engine_id, **values))
    else:
        for k, v in values.items():
            setattr(row, k, v)


def list_heartbeats(session: Session) -> list[EngineHeartbeat]:
    return list(session.scalars(select(EngineHeartbeat).order_by(EngineHeartbeat.seen_at.desc())))


def delete_heartbeat(session: Session, engine_id: str) -> None:
    session.execute(delete(EngineHeartbeat).where(EngineHeartbeat.engine_id == engine_id))


# -- reports (read-only; the builder's manager pages read through engine.reports) -------------
def version_numbers(session: Session) -> dict[int, tuple[str, int]]:
    """Rule-set version id → (funnel, version number), to show which version a firing came from."""
    rows = session.execute(
        select(RuleSetVersion.id, RuleSetVersion.funnel_id, RuleSetVersion.version)
    )
    return {vid: (funnel, number) for vid, funnel, number in rows}


def list_funnel_events(
    session: Session, funnel_id: str, kinds: Iterable[str] | None = None
) -> list[DealEvent]:
    """Events of every deal of one funnel, oldest first (stage history for analytics)."""
    q = (
        select(DealEvent)
        .join(Deal, Deal.id == DealEvent.deal_id)
        .where(Deal.funnel_id == funnel_id)
        .order_by(DealEvent.deal_id, DealEvent.at, DealEvent.id)
    )
    if kinds:
        q = q.where(DealEvent.kind.in_(list(kinds)))
    return list(session.scalars(q))


def list_funnel_firings(
    session: Session, funnel_id: str | None = None, since: datetime | None = None
) -> list[Firing]:
    q = select(Firing).order_by(Firing.fired_at, Firing.id)
    if funnel_id:
        q = q.where(Firing.funnel_id == funnel_id)
    if since is not None:
        q = q.where(Firing.fired_at >= since)
    return list(session.scalars(q))


def list_tasks_with_deals(
    session: Session,
    *,
    statuses: Iterable[str] | None = None,
    funnel_id: str | None = None,
    limit: int = 1000,
) -> list[tuple[Task, Deal]]:
    q = (
        select(Task, Deal)
        .join(Deal, Deal.id == Task.deal_id)
        .order_by(Task.due_at, Task.id)
        .limit(limit)
    )
    if statuses:
        q = q.where(Task.status.in_(list(statuses)))
    if funnel_id:
        q = q.where(Deal.funnel_id == funnel_id)
    return [(task, deal) for task, deal in session.execute(q)]


def list_outbox_log(
    session: Session,
    *,
    statuses: Iterable[str] | None = None,
    funnel_id: str | None = None,
    limit: int = 500,
) -> list[tuple[OutboxAction, Firing, Deal]]:
    """The engine's action log, newest first, with the firing (rule, reason) and the deal."""
    q = (
        select(OutboxAction, Firing, Deal)
        .join(Firing, Firing.id == OutboxAction.firing_id)
        .join(Deal, Deal.id == OutboxAction.deal_id)
        .order_by(OutboxAction.id.desc())
        .limit(limit)
    )
    if statuses:
        q = q.where(OutboxAction.status.in_(list(statuses)))
    if funnel_id:
        q = q.where(Deal.funnel_id == funnel_id)
    return [(action, firing, deal) for action, firing, deal in session.execute(q)]


def count_rows(session: Session) -> dict[str, int]:
    """Row counts of the tables an engine change writes (lets tests prove a read wrote nothing)."""
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Deal, DealEvent, DealSignal, Firing, OutboxAction, Task, Message, Invoice)
    }


# -- engine service (leases, health) ------------------------------------------------------------
def expire_leases(session: Session, now: datetime) -> int:
    """Make every 'sending' lease run out now (SQLite start-up: the engine lock proves its holder died)."""
    res = session.execute(
        update(OutboxAction)
        .where(OutboxAction.status == "sending", OutboxAction.lease_until > now)
        .values(lease_until=now, claimed_by=None)
    )
    return _rowcount(res)


def oldest_ready(session: Session, now: datetime) -> datetime | None:
    """When the longest-waiting action that could run now became due (pending/failed/expired lease)."""
    return session.scalar(select(func.min(OutboxAction.next_attempt_at)).where(_ready_clause(now)))


def lock_invoice_numbering(session: Session) -> None:
    """Serialise invoice numbering across engines on PostgreSQL (numbers are max+1 and unique).

    Without it two engines numbering at once collide on the unique key and one action fails and
    waits for its retry; the transaction-scoped advisory lock makes the second wait a moment instead.
    """
    if _dialect(session) == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(0x636F6E76)))


def deal_counts_by_funnel(session: Session) -> dict[str, int]:
    return dict(
        session.execute(select(Deal.funnel_id, func.count()).group_by(Deal.funnel_id)).all()
    )


def add_deals_bulk(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many deals in one statement (load tests, imports); nothing is evaluated here."""
    if rows:
        session.execute(_table(Deal).insert(), list(rows))


def deal_ids_by_keys(session: Session, keys: Sequence[str]) -> list[int]:
    return list(session.scalars(select(Deal.id).where(Deal.key.in_(list(keys)))))


def deal_id_of_keys(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """``{key: id}`` for the deals with these keys."""
    return {
        k: i for k, i in session.execute(select(Deal.key, Deal.id).where(Deal.key.in_(list(keys))))
    }


def firing_count(
    session: Session, *, since: datetime | None = None, rule_id: str | None = None
) -> int:
    q = select(func.count()).select_from(Firing)
    if since is not None:
        q = q.where(Firing.fired_at >= since)
    if rule_id is not None:
        q = q.where(Firing.rule_id == rule_id)
    return session.scalar(q) or 0


def duplicate_firings(session: Session) -> int:
    """(deal, rule, occurrence) keys recorded more than once: 0 unless the unique key is gone."""
    dup = (
        select(Firing.deal_id)
        .group_by(Firing.deal_id, Firing.rule_id, Firing.occurrence)
        .having(func.count() > 1)
        .subquery()
    )
    return session.scalar(select(func.count()).select_from(dup)) or 0


def outbox_status_counts(session: Session, funnel_id: str | None = None) -> dict[str, int]:
    q = select(OutboxAction.status, func.count()).group_by(OutboxAction.status)
    if funnel_id:
        q = q.join(Deal, Deal.id == OutboxAction.deal_id).where(Deal.funnel_id == funnel_id)
    return dict(session.execute(q).all())


def open_task_counts(
    session: Session, now: datetime, funnel_id: str | None = None
) -> tuple[int, int]:
    """(open tasks and notifications, open tasks past their due time) — notifications are never late."""
    late = and_(Task.kind == "task", Task.due_at < now)
    q = (
        select(func.count(), func.count().filter(late))
        .select_from(Task)
        .where(Task.status == "open")
    )
    if funnel_id:
        q = q.join(Deal, Deal.id == Task.deal_id).where(Deal.funnel_id == funnel_id)
    total, overdue = session.execute(q).one()
    return total or 0, overdue or 0


def deal_stage_counts(session: Session, funnel_id: str | None = None) -> list[tuple[str, str, int]]:
    q = select(Deal.funnel_id, Deal.stage, func.count()).group_by(Deal.funnel_id, Deal.stage)
    if funnel_id:
        q = q.where(Deal.funnel_id == funnel_id)
    return [(funnel, stage, count) for funnel, stage, count in session.execute(q)]

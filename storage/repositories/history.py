"""A deal's history: its change events and the declared events (signals) that happened to it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from storage.models import Deal, DealEvent, DealSignal
from storage.people_models import AuditEntry
from storage.repositories.common import table_of
from storage.repositories.deals import (
    DEAL_COLUMNS,
    LockedDeal,
    changed_columns,
    save_locked_deal,
)
from storage.statements import Statement

_EVENT_COLUMNS = ("deal_id", "at", "kind", "actor", "data")
_AUDIT_COLUMNS = ("at", "actor_kind", "actor", "kind", "deal_id", "subject", "detail")
_ADD_EVENT = Statement(table_of(DealEvent).insert().inline(), column_keys=_EVENT_COLUMNS)
_ADD_AUDIT = Statement(table_of(AuditEntry).insert().inline(), column_keys=_AUDIT_COLUMNS)


def add_event(
    session: Session, deal_id: int, at: datetime, kind: str, actor: str, data: dict[str, Any]
) -> None:
    """One line of a deal's history, written at once (a Core INSERT on the driver's cursor:
    ``storage.statements``)."""
    _ADD_EVENT.execute(
        session.connection(),
        {"deal_id": deal_id, "at": at, "kind": kind, "actor": actor, "data": data},
    )


def insert_audit(session: Session, values: dict[str, Any]) -> None:
    """One entry of the audit trail (``storage.people_repositories.add_audit``), every column given."""
    _ADD_AUDIT.execute(session.connection(), values)


def save_change(
    session: Session, locked: LockedDeal, event: dict[str, Any], audit: dict[str, Any]
) -> None:
    """The end of one change: its history line (``event``: the ``deal_events`` columns but the id), its
    audit entry (``audit``: the ``audit_log`` columns but the id) and the deal's UPDATE of what it
    altered (``save_locked_deal``).

    PostgreSQL: one statement, one round trip (the two INSERTs as data-modifying CTEs of the UPDATE,
    which touches the row the change already holds locked); SQLite has no data-modifying CTEs: three.
    """
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        _ADD_EVENT.execute(conn, event)
        _ADD_AUDIT.execute(conn, audit)
        save_locked_deal(session, locked)
        return
    loaded, changed = locked.loaded, changed_columns(locked)
    columns = tuple(changed)
    stmt = _CHANGE_STATEMENTS.get(columns)
    if stmt is None:
        if len(_CHANGE_STATEMENTS) > 1000:  # a bound the commands never reach (a few sets each)
            _CHANGE_STATEMENTS.clear()
        stmt = _CHANGE_STATEMENTS[columns] = Statement(_change_statement(columns))
    values = {"deal_id_": loaded["id"]}
    values.update({_E[c]: event[c] for c in _EVENT_COLUMNS})
    values.update({_A[c]: audit[c] for c in _AUDIT_COLUMNS})
    values.update({_D[c]: v for c, v in changed.items()})
    stmt.execute(conn, values)
    if changed:
        locked.loaded = {**loaded, **changed}


#: Bind names of the folded statement: one prefix per table, the columns' names collide.
_E = {c: f"e_{c}" for c in _EVENT_COLUMNS}
_A = {c: f"a_{c}" for c in _AUDIT_COLUMNS}
_D = {c: f"d_{c}" for c in DEAL_COLUMNS}
_CHANGE_STATEMENTS: dict[tuple[str, ...], Statement] = {}


def _binds(
    table: Any, names: dict[str, str], columns: Sequence[str]
) -> dict[str, BindParameter[Any]]:
    return {c: bindparam(names[c], type_=table.c[c].type) for c in columns}


def _change_statement(changed: tuple[str, ...]) -> Any:
    """PostgreSQL: ``WITH e AS (INSERT deal_events), a AS (INSERT audit_log) UPDATE deals``, or
    without the UPDATE when no column of the deal changed."""
    events, audit, deals = table_of(DealEvent), table_of(AuditEntry), table_of(Deal)
    event_cte = insert(events).values(_binds(events, _E, _EVENT_COLUMNS)).cte("change_event")
    audit_values = _binds(audit, _A, _AUDIT_COLUMNS)
    if not changed:
        return insert(audit).values(audit_values).add_cte(event_cte)
    audit_cte = insert(audit).values(audit_values).cte("change_audit")
    return (
        update(deals)
        .values(_binds(deals, _D, changed))
        .where(deals.c.id == bindparam("deal_id_"))
        .add_cte(event_cte)
        .add_cte(audit_cte)
    )


def list_events(
    session: Session, deal_id: int | None = None, kinds: Iterable[str] | None = None
) -> list[DealEvent]:
    q = select(DealEvent).order_by(DealEvent.at, DealEvent.id)
    if deal_id is not None:
        q = q.where(DealEvent.deal_id == deal_id)
    if kinds:
        q = q.where(DealEvent.kind.in_(list(kinds)))
    return list(session.scalars(q))


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
        session.execute(table_of(DealSignal).insert(), list(rows))


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

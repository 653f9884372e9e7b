"""A deal's history: its change events and the declared events (signals) that happened to it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Deal, DealEvent, DealSignal
from storage.repositories.common import table_of

_ADD_EVENT = table_of(DealEvent).insert()


def add_event(
    session: Session, deal_id: int, at: datetime, kind: str, actor: str, data: dict[str, Any]
) -> None:
    """One line of a deal's history, written at once (a Core INSERT: no unit-of-work bookkeeping)."""
    session.connection().execute(
        _ADD_EVENT, {"deal_id": deal_id, "at": at, "kind": kind, "actor": actor, "data": data}
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

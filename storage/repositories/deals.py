"""Deals: one at a time, by key, in bulk, and counted per funnel and stage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Deal
from storage.repositories.common import dialect_name, table_of


def get_deal(session: Session, deal_id: int, *, for_update: bool = False) -> Deal | None:
    if for_update and dialect_name(session) == "postgresql":
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
    manager_id: int | None = None,
) -> list[Deal]:
    q = select(Deal).order_by(Deal.id)
    if funnel_id:
        q = q.where(Deal.funnel_id == funnel_id)
    if manager_id is not None:
        q = q.where(Deal.manager_id == manager_id)
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
    if skip_locked and dialect_name(session) == "postgresql":
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


def add_deals_bulk(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many deals in one statement (load tests, imports); nothing is evaluated here."""
    if rows:
        session.execute(table_of(Deal).insert(), list(rows))


def deal_ids_by_keys(session: Session, keys: Sequence[str]) -> list[int]:
    return list(session.scalars(select(Deal.id).where(Deal.key.in_(list(keys)))))


def deal_id_of_keys(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """``{key: id}`` for the deals with these keys."""
    return {
        k: i for k, i in session.execute(select(Deal.key, Deal.id).where(Deal.key.in_(list(keys))))
    }


def deal_counts_by_funnel(session: Session) -> dict[str, int]:
    return dict(
        session.execute(select(Deal.funnel_id, func.count()).group_by(Deal.funnel_id)).all()
    )


def deal_stage_counts(session: Session, funnel_id: str | None = None) -> list[tuple[str, str, int]]:
    q = select(Deal.funnel_id, Deal.stage, func.count()).group_by(Deal.funnel_id, Deal.stage)
    if funnel_id:
        q = q.where(Deal.funnel_id == funnel_id)
    return [(funnel, stage, count) for funnel, stage, count in session.execute(q)]

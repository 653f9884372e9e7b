"""Firings: one row per (deal, rule, occurrence), the unique key that makes a rule fire once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import Firing
from storage.repositories.common import dialect_name, table_of


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
    return session.execute(_firing_insert(dialect_name(session)), values).scalar()


def insert_firings(session: Session, rows: list[dict[str, Any]]) -> dict[tuple[int, str, str], int]:
    """Insert many firings in one statement, skipping (deal, rule, occurrence) already recorded.

    Returns the ids of the rows inserted, by (deal_id, rule_id, occurrence); the unique constraint
    decides as in ``insert_firing``.
    """
    if not rows:
        return {}
    result = session.connection().execute(_firing_insert(dialect_name(session), many=True), rows)
    return {(deal_id, rule_id, occ): firing_id for firing_id, deal_id, rule_id, occ in result}


_FIRING_INSERTS: dict[tuple[str, bool], Any] = {}


def _firing_insert(dialect: str, many: bool = False) -> Any:
    # One Core statement per dialect, values passed as parameters: compiled once and no ORM bulk
    # machinery (a ``.values(**values)`` statement per call re-derives its cache key every time).
    stmt = _FIRING_INSERTS.get((dialect, many))
    if stmt is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        t = table_of(Firing)
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


def list_funnel_firings(
    session: Session, funnel_id: str | None = None, since: datetime | None = None
) -> list[Firing]:
    q = select(Firing).order_by(Firing.fired_at, Firing.id)
    if funnel_id:
        q = q.where(Firing.funnel_id == funnel_id)
    if since is not None:
        q = q.where(Firing.fired_at >= since)
    return list(session.scalars(q))


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

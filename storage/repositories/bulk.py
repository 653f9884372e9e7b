"""Bulk writes of a deals import: ids taken up front, rows inserted with one executemany per table.

Taking the deals' ids before inserting them lets the caller write a keyless deal's ``D-<id>`` key,
its history and its firings without reading anything back. On SQLite the caller holds the write lock
(``BEGIN IMMEDIATE``), so ``max(id) + 1`` onwards is free until it commits; on PostgreSQL the ids come
from the table's own sequence and are never handed out twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from storage.models import Deal, DealEvent
from storage.repositories.common import dialect_name, table_of


def allocate_deal_ids(session: Session, count: int) -> list[int]:
    """``count`` ids no deal has or will be given by anyone else (inside a write transaction)."""
    if count <= 0:
        return []
    if dialect_name(session) == "postgresql":
        rows = session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('deals', 'id')) FROM generate_series(1, :n)"
            ),
            {"n": count},
        )
        return [int(r[0]) for r in rows]
    first = (session.scalar(select(func.max(Deal.id))) or 0) + 1
    return list(range(first, first + count))


def existing_keys(session: Session, keys: Sequence[str], page: int = 5000) -> set[str]:
    """Which of ``keys`` a deal already has."""
    found: set[str] = set()
    for start in range(0, len(keys), page):
        part = list(keys[start : start + page])
        found.update(session.scalars(select(Deal.key).where(Deal.key.in_(part))))
    return found


def add_events_bulk(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Lines of deals' histories (``deal_events``) in one executemany."""
    if rows:
        session.execute(table_of(DealEvent).insert(), list(rows))

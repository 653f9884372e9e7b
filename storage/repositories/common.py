"""What the repository modules share: outbox status groups and small helpers over SQLAlchemy results."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session

from storage.models import Base

#: Outbox statuses an action never leaves, and those from which it is tried again.
TERMINAL = ("done", "dead")
RETRYABLE = ("pending", "failed")


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, for Core statements (executemany without ORM bookkeeping)."""
    return cast(Table, model.__table__)


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE (``Session.execute`` types its result as a plain ``Result``)."""
    return cast("CursorResult[Any]", result).rowcount or 0


def dialect_name(session: Session) -> str:
    """``"sqlite"`` or ``"postgresql"``: the few statements that differ (locks, upserts) ask this."""
    return session.get_bind().dialect.name

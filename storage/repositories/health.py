"""Engine heartbeats and row counts (status pages, and tests proving a read wrote nothing)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from storage.models import (
    Deal,
    DealEvent,
    DealSignal,
    EngineHeartbeat,
    Firing,
    Invoice,
    Message,
    OutboxAction,
    Task,
)


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


def count_rows(session: Session) -> dict[str, int]:
    """Row counts of the tables an engine change writes (lets tests prove a read wrote nothing)."""
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Deal, DealEvent, DealSignal, Firing, OutboxAction, Task, Message, Invoice)
    }

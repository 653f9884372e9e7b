"""Cursor pages of tasks and outbox actions for the HTTP API: stable order (by id), keyset cursors.

A cursor is the last id a page returned; the next page reads ids after it, so rows added meanwhile
never shift or repeat a page (unlike an offset).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Deal, Firing, Manager, OutboxAction, Task


def tasks_page(
    session: Session,
    *,
    after: int,
    limit: int,
    status: str | None = None,
    manager: str | None = None,
    due_before: datetime | None = None,
    deal_id: int | None = None,
) -> list[tuple[Task, str, str | None]]:
    """(task, deal key, manager name) by task id, ``limit`` rows after id ``after``."""
    q = (
        select(Task, Deal.key, Manager.name)
        .join(Deal, Deal.id == Task.deal_id)
        .outerjoin(Manager, Manager.id == Task.manager_id)
        .where(Task.id > after)
        .order_by(Task.id)
        .limit(limit)
    )
    if status:
        q = q.where(Task.status == status)
    if manager:
        q = q.where(Manager.name == manager)
    if due_before is not None:
        q = q.where(Task.due_at.is_not(None), Task.due_at < due_before)
    if deal_id is not None:
        q = q.where(Task.deal_id == deal_id)
    return [(t, key, name) for t, key, name in session.execute(q)]


def actions_page(
    session: Session,
    *,
    after: int,
    limit: int,
    statuses: Iterable[str] | None = None,
    deal_id: int | None = None,
) -> list[tuple[OutboxAction, Firing | None, str | None, str | None]]:
    """(action, its firing, deal key, manager) by outbox id, ``limit`` rows after id ``after``.

    A message to a manager has no firing (and a digest no deal): ``None`` there; ``manager`` names
    the manager such a message is for."""
    q = (
        select(OutboxAction, Firing, Deal.key, Manager.name)
        .outerjoin(Firing, Firing.id == OutboxAction.firing_id)
        .outerjoin(Deal, Deal.id == OutboxAction.deal_id)
        .outerjoin(Manager, Manager.id == OutboxAction.manager_id)
        .where(OutboxAction.id > after)
        .order_by(OutboxAction.id)
        .limit(limit)
    )
    statuses = list(statuses or [])
    if statuses:
        q = q.where(OutboxAction.status.in_(statuses))
    if deal_id is not None:
        q = q.where(OutboxAction.deal_id == deal_id)
    return [(a, f, key, manager) for a, f, key, manager in session.execute(q)]

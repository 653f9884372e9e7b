"""What the effects produce: tasks and notifications, messages, invoices."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from storage.models import Deal, Invoice, Message, OutboxAction, Task
from storage.repositories.common import RETRYABLE, dialect_name, rowcount


def add_task(session: Session, **values: Any) -> Task:
    row = Task(**values)
    session.add(row)
    session.flush()
    return row


def cancel_stage_tasks(
    session: Session, deal_id: int, stage: str, visit: int, reason: str, now: datetime
) -> int:
    """Close the deal's open tasks that belong to (``stage``, ``visit``) as cancelled; how many."""
    result = session.execute(
        update(Task)
        .where(
            Task.deal_id == deal_id,
            Task.status == "open",
            Task.stage == stage,
            Task.stage_visit == visit,
        )
        .values(status="cancelled", closed_reason=reason[:100], done_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def hand_over_work(session: Session, deal_id: int, manager_id: int) -> tuple[int, int]:
    """Give the deal's open tasks and its manager messages still to be sent to ``manager_id``;
    how many of each moved. A message being sent right now (claimed) is left to finish."""
    tasks = session.execute(
        update(Task)
        .where(
            Task.deal_id == deal_id,
            Task.status == "open",
            Task.manager_id.is_distinct_from(manager_id),
        )
        .values(manager_id=manager_id)
        .execution_options(synchronize_session="fetch")
    )
    messages = session.execute(
        update(OutboxAction)
        .where(
            OutboxAction.deal_id == deal_id,
            OutboxAction.manager_id.is_not(None),
            OutboxAction.manager_id != manager_id,
            OutboxAction.status.in_(RETRYABLE),
            OutboxAction.claimed_by.is_(None),
        )
        .values(manager_id=manager_id)
        .execution_options(synchronize_session="fetch")
    )
    return rowcount(tasks), rowcount(messages)


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


def list_tasks_with_deals(
    session: Session,
    *,
    statuses: Iterable[str] | None = None,
    funnel_id: str | None = None,
    limit: int = 1000,
    manager_id: int | None = None,
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
    if manager_id is not None:
        q = q.where(Task.manager_id == manager_id)
    return [(task, deal) for task, deal in session.execute(q)]


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


def lock_invoice_numbering(session: Session) -> None:
    """Serialise invoice numbering across engines on PostgreSQL (numbers are max+1 and unique).

    Without it two engines numbering at once collide on the unique key and one action fails and
    waits for its retry; the transaction-scoped advisory lock makes the second wait a moment instead.
    """
    if dialect_name(session) == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(0x636F6E76)))


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

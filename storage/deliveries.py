"""Reads of the ``messages`` table by what a gateway or a listing knows: the gateway's id, the actions."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Message, OutboxAction

__all__ = ["message_by_provider_ref", "messages_for_outbox", "messages_to_manager"]


def message_by_provider_ref(session: Session, provider: str, ref: str) -> Message | None:
    """The message a gateway knows as ``ref`` (Twilio's sid, say), locked for the update that follows."""
    q = (
        select(Message)
        .where(Message.provider == provider, Message.provider_ref == ref)
        .order_by(Message.id)
        .limit(1)
        .with_for_update()
    )
    return session.scalar(q)


def messages_for_outbox(session: Session, outbox_ids: Iterable[int]) -> dict[int, Message]:
    """outbox id → its message, for the actions of a listing."""
    ids = sorted(set(outbox_ids))
    out: dict[int, Message] = {}
    for start in range(0, len(ids), 500):
        for m in session.scalars(
            select(Message).where(Message.outbox_id.in_(ids[start : start + 500]))
        ):
            out[m.outbox_id] = m
    return out


def messages_to_manager(session: Session, manager_id: int, limit: int = 10) -> list[Message]:
    """The latest messages to one manager (notifications, urgent tasks, digests), newest first."""
    q = (
        select(Message)
        .join(OutboxAction, OutboxAction.id == Message.outbox_id)
        .where(OutboxAction.manager_id == manager_id)
        .order_by(Message.id.desc())
        .limit(limit)
    )
    return list(session.scalars(q))

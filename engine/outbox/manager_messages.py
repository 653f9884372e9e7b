"""Messages to managers: ``notify_manager``, an urgent task and the daily digest, through the outbox.

Each is one outbox row (kind ``message``, ``manager_id`` set, no rule firing: a manager's message
neither waits for nor stops its rule's later actions), queued in the same transaction as what it
tells of, under an idempotency key of its own, and sent by the dispatcher like a client's message:
at least once to the gateway, exactly once after its acknowledgement. The manager's channel and
address are read when the message is first addressed; a manager with none has it ``recorded`` on
the ``builder`` channel (shown in the builder, sent nowhere) at once: a clear state, never lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.i18n import LANGUAGES, default_language, use_language
from engine.i18n import gettext as _
from engine.text import storable
from storage import repositories as repo
from storage.models import Deal, Manager, OutboxAction, Task
from storage.people_models import User

__all__ = [
    "BUILDER_ONLY",
    "DIGEST",
    "MANAGER_MESSAGE",
    "address",
    "hold",
    "language_of",
    "queue",
    "queue_once",
    "tell",
]

#: The outbox action of a notification or urgent task told to a manager, and of the daily digest.
MANAGER_MESSAGE = "manager_message"
DIGEST = "manager_digest"
#: The channel of a manager's message when the manager has no preference: recorded, shown in the builder.
BUILDER_ONLY = "builder"
#: Longest text kept for a manager's message (a Telegram message holds 4096 characters).
MAX_TEXT = 4000


def language_of(s: Session, manager_id: int) -> str:
    """The language a manager reads: the one their user chose (users.language), else the default."""
    chosen = s.scalar(
        select(User.language)
        .where(User.manager_id == manager_id, User.language.is_not(None))
        .order_by(User.active.desc(), User.id)
        .limit(1)
    )
    return chosen if chosen in LANGUAGES else default_language()


def _row(
    *,
    manager_id: int,
    deal_id: int | None,
    action: str,
    text: str,
    subject: str,
    key: str,
    now: datetime,
    rule: str = "",
    not_before: datetime | None = None,
    task: int | None = None,
) -> dict[str, Any]:
    params: dict[str, Any] = {"text": storable(text, MAX_TEXT), "subject": storable(subject, 200)}
    if rule:
        params["rule"] = rule  # what the actions review shows as its rule
    if task is not None:
        params["task"] = (
            task  # the outbox row of the task or notification it tells of (tasks.outbox_id)
        )
    return {
        "firing_id": None,
        "deal_id": deal_id,
        "manager_id": manager_id,
        "seq": 0,
        "action": action,
        "params": params,
        "kind": "message",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": max(now, not_before) if not_before is not None else now,
        "idempotency_key": key,
        "created_at": now,
        "updated_at": now,
    }


def queue(
    s: Session,
    *,
    manager_id: int,
    deal_id: int | None,
    text: str,
    subject: str,
    key: str,
    now: datetime,
    action: str = MANAGER_MESSAGE,
    rule: str = "",
    not_before: datetime | None = None,
    task: int | None = None,
) -> None:
    """Queue a message to a manager in ``s``'s transaction (the effect that tells of it runs once),
    sent no earlier than ``not_before`` (a notification's delay).

    An active manager with no channel has nothing to send: a message due now is done at once and
    ``recorded`` on the ``builder`` channel (kept, shown in the builder), never handed to a gateway.
    One due later waits, and is recorded (or sent, if a channel was set meanwhile) at its time.
    """
    values = _row(
        manager_id=manager_id,
        deal_id=deal_id,
        action=action,
        text=text,
        subject=subject,
        key=key,
        now=now,
        rule=rule,
        not_before=not_before,
        task=task,
    )
    manager = s.get(Manager, manager_id)
    reachable = manager is not None and manager.notify_channel and manager.notify_address
    if reachable or manager is None or not manager.active or values["next_attempt_at"] > now:
        repo.add_outbox_rows(s, [values])  # the dispatcher addresses it (or says why it cannot)
        return
    name = manager.name
    body = str(values["params"]["text"])
    row = OutboxAction(
        **{**values, "status": "done", "done_at": now},
        result={"channel": BUILDER_ONLY, "to": name, "text": body},
    )
    s.add(row)
    s.flush()
    repo.add_message(
        s,
        deal_id=None,  # not one of the deal's messages to its client (the outbox row keeps the deal)
        outbox_id=row.id,
        channel=BUILDER_ONLY,
        to=name,
        text=body,
        provider="record",
        idempotency_key=key,
        status="recorded",
        created_at=now,
        sent_at=now,
    )


def queue_once(
    s: Session,
    *,
    manager_id: int,
    text: str,
    subject: str,
    key: str,
    now: datetime,
    action: str = DIGEST,
) -> bool:
    """Queue it unless a row with ``key`` exists (another engine, an earlier run): True if queued.

    The outbox's unique idempotency key decides between engines that queue at the same moment.
    """
    if s.scalar(select(OutboxAction.id).where(OutboxAction.idempotency_key == key)) is not None:
        return False
    savepoint = s.begin_nested()
    try:
        queue(
            s,
            manager_id=manager_id,
            deal_id=None,
            text=text,
            subject=subject,
            key=key,
            now=now,
            action=action,
        )
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        return False
    return True


def address(s: Session, row: OutboxAction) -> tuple[str, str, str, str]:
    """(channel, to, subject, text) of a manager's message as the manager's preference stands now."""
    params = row.params or {}
    manager = s.get(Manager, row.manager_id)
    text, subject = str(params.get("text", "")), str(params.get("subject", ""))
    if manager is None or not manager.notify_channel or not manager.notify_address:
        name = manager.name if manager is not None else f"manager {row.manager_id}"
        return BUILDER_ONLY, name, subject, text
    return manager.notify_channel, manager.notify_address, subject, text


def tell(
    s: Session,
    *,
    row: OutboxAction,
    rule: str,
    deal: Deal,
    headline: str,
    text: str,
    now: datetime,
    not_before: datetime | None = None,
) -> bool:
    """Queue, for the deal's manager, what the effect of ``row`` made (a notification, an urgent task),
    to be sent no earlier than ``not_before``.

    ``headline`` is untranslated (``N_``): it is written in the manager's language, like the digest.

    One message per outbox row (its key is the row's own plus ``:manager``); False when the deal has
    no manager to tell (the task or notification still shows in the builder).
    """
    if deal.manager_id is None:
        return False
    title = deal.title or deal.key
    with use_language(language_of(s, deal.manager_id)):  # the manager's words, not the engine's
        headline, deal_word = _(headline), _("Deal")
    body = f"{headline}: {text}\n{deal_word}: {title}"
    queue(
        s,
        manager_id=deal.manager_id,
        deal_id=deal.id,
        text=body,
        subject=f"{headline}: {text}".splitlines()[0][:150],
        key=f"{row.idempotency_key}:manager",
        now=now,
        rule=rule,
        not_before=not_before,
        task=row.id,
    )
    return True


def hold(s: Session, row: OutboxAction) -> tuple[str, str] | None:
    """Why a manager's message must not go as queued, checked each time it is addressed:
    ``("done", why)`` — not needed any more, its task or notification was closed (done, or cancelled
    as the deal left the stage) before its time; ``("dead", why)`` — its manager was deactivated (an
    ex-colleague's chat must not get clients' news) and the deal is still theirs: the Actions review
    shows it to the owner. A deactivated manager's deal given to another active manager meanwhile:
    the message goes to that manager (``row`` moves to them)."""
    params = row.params or {}
    if params.get("task") is not None:
        closed = s.execute(
            select(Task.status, Task.closed_reason).where(Task.outbox_id == params["task"])
        ).first()
        if closed is not None and closed[0] != "open":
            why = closed[1] or closed[0]
            return "done", f"not sent: its task was closed before it was due ({why})"
    manager = s.get(Manager, row.manager_id)
    if manager is not None and manager.active:
        return None
    deal = s.get(Deal, row.deal_id) if row.deal_id is not None else None
    if deal is not None and deal.manager_id not in (None, row.manager_id):
        other = s.get(Manager, deal.manager_id)
        if other is not None and other.active:
            row.manager_id = other.id  # the deal's manager now is the one to tell
            return None
    name = manager.name if manager is not None else f"manager {row.manager_id}"
    if deal is None:
        return "dead", f"not sent: {name} is deactivated"
    return "dead", (
        f"not sent: {name} is deactivated and deal {deal.key} is still assigned to them, so nobody"
        " else is told; give the deal to an active manager (Give to on its deal card, or PATCH"
        f" /api/v1/deals/{deal.key} with manager) or re-activate them, then retry"
    )

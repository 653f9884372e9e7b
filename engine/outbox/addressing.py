"""Addressing a message: its channel, its recipient on that channel, an e-mail's subject, a gateway's word.

Pure functions over a deal and an action's params; the dispatcher calls them while it prepares a row.
"""

from __future__ import annotations

import re
from typing import Any

from engine.errors import PermanentSendError

__all__ = [
    "MESSAGE_STATES",
    "TELEGRAM_FIELD",
    "delivery_state",
    "message_channel",
    "recipient",
    "split_subject",
    "with_subject",
]


_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{5,22}$")


_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


#: What a message's row in ``messages`` may say, in the order a message moves through them.
MESSAGE_STATES = ("recorded", "sending", "sent", "delivered", "failed", "dead")


#: Deal field holding a client's Telegram chat id (the Bot API cannot write to a phone number).
TELEGRAM_FIELD = "telegram_chat_id"


def message_channel(action: str, params: dict[str, Any]) -> str:
    """The channel a message action uses: ``send_sms`` → sms, ``send_email`` → email, ``send_message`` its own."""
    if action == "send_email":
        return "email"
    if action == "send_message":
        return str(params.get("channel", "sms"))
    return "sms"


def recipient(channel: str, deal: Any, params: dict[str, Any] | None = None) -> str:
    """Where a message to ``deal`` goes on ``channel``; PermanentSendError if the deal has no usable one."""
    if channel == "email":
        to = ((params or {}).get("to") or deal.email or "").strip()
        if not _EMAIL.match(to):
            raise PermanentSendError(f"deal {deal.key} has no valid e-mail address ({to!r})")
        return to
    if channel == "telegram":
        chat = str((deal.fields or {}).get(TELEGRAM_FIELD) or "").strip()
        if not re.fullmatch(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}", chat):
            raise PermanentSendError(
                f"deal {deal.key} has no Telegram chat id (field '{TELEGRAM_FIELD}': {chat!r})"
            )
        return chat
    phone = (deal.phone or "").strip()
    digits = re.sub(r"\D", "", phone)
    if not _PHONE.match(phone) or not 7 <= len(digits) <= 15:
        raise PermanentSendError(f"bad phone number {phone!r} on deal {deal.key}")
    return phone


#: An e-mail's subject is kept with its text in ``messages.text``: "Subject: …", a blank line, the text.
_SUBJECT = "Subject: "


def with_subject(subject: str, text: str) -> str:
    """An e-mail as ``messages.text`` keeps it."""
    return f"{_SUBJECT}{subject}\n\n{text}"


def split_subject(stored: str) -> tuple[str, str]:
    """(subject, text) of a stored e-mail."""
    if stored.startswith(_SUBJECT) and "\n\n" in stored:
        head, _, text = stored.partition("\n\n")
        return head[len(_SUBJECT) :], text
    return "", stored  # recorded before e-mails had subjects


def delivery_state(provider: str, status: str) -> str | None:
    """A gateway's word on a message as one of ours (``delivered``/``failed``), None if it says neither."""
    word = status.strip().lower()
    if word in ("delivered", "failed"):
        return word
    if provider == "twilio":
        from engine.outbox.providers.twilio import delivery_state

        return delivery_state(word)
    return None

"""What every message provider is: the message it is given and the calls it answers.

A provider gets each message with an idempotency key (the same key on every retry of one action)
and either returns a ``Receipt`` (accepted by the gateway, with the gateway's message id; or already
``delivered`` where the gateway's answer says so), or raises ``PermanentSendError`` (do not retry),
``TransientSendError`` (retry with backoff) or ``RateLimited`` (retry after the gateway's wait). The
dispatcher records every message in the ``messages`` table around the call, whatever the provider.

After a crash or an unclear answer the dispatcher asks before sending again: ``reconcile(message)``
where the provider has it (it may need the recipient and text, e.g. Twilio), else
``delivered(idempotency_key)``. Both answer "got through" (a ``Receipt`` or ``True``), "did not"
(``False``) or "cannot tell" (``None``: the message is sent again with the same key).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = [
    "MessageProvider",
    "OutgoingMessage",
    "Receipt",
    "Reconciling",
    "default_timeout",
    "receipt",
]


@dataclass(frozen=True)
class OutgoingMessage:
    idempotency_key: str
    channel: str
    to: str
    text: str
    deal: str
    subject: str = ""
    #: When the message was first recorded (before its first attempt): reconciliation looks no earlier.
    created_at: datetime | None = None


@dataclass(frozen=True)
class Receipt:
    """The gateway's answer to an accepted message."""

    gateway_id: str | None = None
    #: The answer itself means delivered (Telegram's sendMessage), not only accepted for delivery.
    delivered: bool = False


class MessageProvider(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> Receipt | str | None:
        """Hand the message to the gateway; a ``Receipt`` (or, as before, the reference text or None)."""

    def delivered(self, idempotency_key: str) -> bool | None:
        """After a crash: did a message with this key get through? None when the provider cannot tell."""


@runtime_checkable
class Reconciling(Protocol):
    """A provider that needs the whole message to answer "did it get through?"."""

    def reconcile(self, message: OutgoingMessage) -> Receipt | bool | None: ...


def receipt(answer: Receipt | str | None) -> Receipt:
    """A provider's answer as a ``Receipt`` (older providers return the reference text, or None)."""
    return answer if isinstance(answer, Receipt) else Receipt(answer)


def default_timeout(env: Mapping[str, str] | None = None) -> float:
    """``CONVEYOR_PROVIDER_TIMEOUT`` (seconds, default 10): each network wait of a gateway call."""
    raw = (os.environ if env is None else env).get("CONVEYOR_PROVIDER_TIMEOUT", "10")
    try:
        timeout = float(raw)
    except ValueError:
        raise ValueError(f"CONVEYOR_PROVIDER_TIMEOUT={raw!r} is not a number of seconds") from None
    if timeout <= 0:
        raise ValueError(f"CONVEYOR_PROVIDER_TIMEOUT={raw!r} must be positive")
    return timeout

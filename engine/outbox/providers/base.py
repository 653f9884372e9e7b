"""What every message provider is: the message it is given and the two calls it answers.

A provider gets each message with an idempotency key (the same key on every retry of one action)
and either returns (delivered or accepted), or raises ``PermanentSendError`` (do not retry) or
``TransientSendError`` (retry with backoff). The dispatcher records every message in the ``messages``
table around the call, whatever the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    idempotency_key: str
    channel: str
    to: str
    text: str
    deal: str


class MessageProvider(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> str | None:
        """Deliver; return the provider's reference (or None)."""

    def delivered(self, idempotency_key: str) -> bool | None:
        """After a crash: did a message with this key get through? None when the provider cannot tell."""

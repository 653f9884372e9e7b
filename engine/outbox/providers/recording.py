"""The default provider: no gateway; the ``messages`` row the dispatcher writes is the record."""

from __future__ import annotations

from engine.outbox.providers.base import OutgoingMessage


class RecordingProvider:
    """The default: no gateway; the ``messages`` row written by the dispatcher is the record."""

    name = "record"

    def send(self, message: OutgoingMessage) -> str | None:
        return None

    def delivered(self, idempotency_key: str) -> bool | None:
        return None

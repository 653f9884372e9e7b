"""Message providers, one module each, behind the interface in ``base``; ``provider_from_url`` picks one."""

from __future__ import annotations

import os

from engine.outbox.providers.base import MessageProvider, OutgoingMessage
from engine.outbox.providers.recording import RecordingProvider
from engine.outbox.providers.webhook import WebhookProvider
from storage.urls import mask_url

__all__ = ["MessageProvider", "OutgoingMessage", "RecordingProvider", "WebhookProvider", "provider_from_url"]


def provider_from_url(url: str | None) -> MessageProvider:
    """``None``/``record`` → RecordingProvider; an http(s) URL → WebhookProvider.

    ``CONVEYOR_PROVIDER_TIMEOUT`` (seconds, default 10) bounds each webhook call; keep it well under
    the engine's ``--lease-seconds`` so a slow call never outlives its claim.
    """
    if not url or url == "record":
        return RecordingProvider()
    if url.startswith(("http://", "https://")):
        raw = os.environ.get("CONVEYOR_PROVIDER_TIMEOUT", "10")
        try:
            timeout = float(raw)
        except ValueError:
            raise ValueError(f"CONVEYOR_PROVIDER_TIMEOUT={raw!r} is not a number of seconds") from None
        if timeout <= 0:
            raise ValueError(f"CONVEYOR_PROVIDER_TIMEOUT={raw!r} must be positive")
        return WebhookProvider(url, timeout=timeout)
    raise ValueError(f"unknown message provider {mask_url(url)!r}: use 'record' or an http(s) webhook URL")

"""Message providers, one module each, behind the interface in ``base``.

    base        OutgoingMessage, Receipt, MessageProvider (send / delivered), Reconciling
    recording   no gateway: the message is recorded only (state ``recorded``)
    smtp        e-mail over SMTP (STARTTLS / TLS, auth)
    telegram    the Telegram Bot API's sendMessage
    twilio      SMS through Twilio's Messages API
    webhook     any gateway that takes a signed JSON POST
    http        the one way HTTP providers call a gateway (no redirects, errors classified)

``engine.outbox.channels`` picks one per channel from the config; ``provider_from_url`` is the
older ``CONVEYOR_PROVIDER`` shortcut.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from engine.outbox.providers.base import (
    MessageProvider,
    OutgoingMessage,
    Receipt,
    Reconciling,
    default_timeout,
    receipt,
)
from engine.outbox.providers.recording import RecordingProvider
from engine.outbox.providers.smtp import SmtpProvider
from engine.outbox.providers.telegram import TelegramProvider
from engine.outbox.providers.twilio import TwilioProvider
from engine.outbox.providers.webhook import WebhookProvider
from storage.urls import mask_url

__all__ = [
    "MessageProvider",
    "OutgoingMessage",
    "Receipt",
    "Reconciling",
    "RecordingProvider",
    "SmtpProvider",
    "TelegramProvider",
    "TwilioProvider",
    "WebhookProvider",
    "provider_from_url",
    "receipt",
]

log = logging.getLogger("conveyor.providers")

#: The signing secret of the ``CONVEYOR_PROVIDER`` webhook shortcut.
SECRET_ENV = "CONVEYOR_WEBHOOK_SECRET"


def provider_from_url(url: str | None, env: Mapping[str, str] | None = None) -> MessageProvider:
    """``None``/``record`` → RecordingProvider; an http(s) URL → WebhookProvider (every channel).

    The shortcut of ``CONVEYOR_PROVIDER``, kept from before ``conveyor.toml``: its webhook is signed
    with ``CONVEYOR_WEBHOOK_SECRET`` when that is set. ``CONVEYOR_PROVIDER_TIMEOUT`` (seconds, default
    10) bounds each webhook call; keep it well under the engine's ``--lease-seconds`` so a slow call
    never outlives its claim.
    """
    env = os.environ if env is None else env
    if not url or url == "record":
        return RecordingProvider()
    if url.startswith(("http://", "https://")):
        secret = env.get(SECRET_ENV) or None
        if secret is None:
            # INFO, not WARNING: every command reads CONVEYOR_PROVIDER; the engine's log shows it.
            log.info(
                "the CONVEYOR_PROVIDER webhook is not signed: set %s, or configure the channels in"
                ' conveyor.toml (provider = "webhook" with a secret)',
                SECRET_ENV,
            )
        return WebhookProvider(url, timeout=default_timeout(env), secret=secret)
    raise ValueError(
        f"unknown message provider {mask_url(url)!r}: use 'record' or an http(s) webhook URL"
    )

"""The channel router: which provider carries a message, by its channel, at the channel's rate.

Built once at start from ``conveyor.toml`` (``channels_from_config``) or from the older
``CONVEYOR_PROVIDER`` shortcut (one webhook for every channel). A channel with no provider is
recorded only: its messages end ``recorded``, never claimed as sent. The router is itself a message
provider to the dispatcher (``send``/``reconcile``), so the engine service can watch its calls.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from engine.config import (
    Config,
    ConfigInvalid,
    RecordChannel,
    SmtpChannel,
    TelegramChannel,
    TwilioChannel,
    WebhookChannel,
)
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
from engine.outbox.ratelimit import TokenBucket

__all__ = ["DEFAULT_RATES", "ChannelRouter", "Route", "channels_from_config", "default_timeout"]

log = logging.getLogger("conveyor.channels")

#: Messages a second when the config does not say: what each gateway documents as its default limit
#: (Telegram ~30/s per bot, Twilio 1/s per long-code number); a webhook or SMTP server is not limited.
DEFAULT_RATES: dict[str, float | None] = {
    "telegram": 25.0,
    "twilio": 1.0,
    "smtp": None,
    "webhook": None,
    "record": None,
}


@dataclass
class Route:
    provider: MessageProvider
    bucket: TokenBucket

    @property
    def records_only(self) -> bool:
        return isinstance(self.provider, RecordingProvider)


class ChannelRouter:
    """Per channel: a provider and its token bucket; ``fallback`` carries every other channel."""

    name = "channels"

    def __init__(
        self,
        routes: Mapping[str, Route] | None = None,
        fallback: MessageProvider | None = None,
        *,
        max_wait: float | None = None,
    ):
        self.routes = dict(routes or {})
        self.fallback = fallback or RecordingProvider()
        self._fallback_buckets: dict[str, TokenBucket] = {}
        timeouts = [float(getattr(r.provider, "timeout", 0) or 0) for r in self.routes.values()]
        self.timeout = (
            max([*timeouts, float(getattr(self.fallback, "timeout", 0) or 0), 0.0]) or 10.0
        )
        #: The longest a sender sleeps for a token; a longer wait defers the message instead.
        self.max_wait = self.timeout if max_wait is None else max_wait

    def __repr__(self) -> str:
        inner = ", ".join(f"{c}={r.provider.name}" for c, r in sorted(self.routes.items()))
        return f"ChannelRouter({inner or 'all recorded'}; others: {self.fallback.name})"

    def route(self, channel: str) -> Route:
        found = self.routes.get(channel)
        if found is not None:
            return found
        bucket = self._fallback_buckets.setdefault(channel, TokenBucket(None, channel=channel))
        return Route(self.fallback, bucket)

    def provider_for(self, channel: str) -> MessageProvider:
        return self.route(channel).provider

    def provider_name(self, channel: str) -> str:
        return self.route(channel).provider.name

    def describe(self) -> dict[str, str]:
        """channel → provider name, for the log line at start (no URLs, no secrets)."""
        out = {c: r.provider.name for c, r in self.routes.items()}
        for c in ("sms", "email", "telegram", "viber", "whatsapp"):
            out.setdefault(c, self.fallback.name)
        return dict(sorted(out.items()))

    def send(self, message: OutgoingMessage) -> Receipt:
        route = self.route(message.channel)
        route.bucket.acquire(self.max_wait)
        try:
            return receipt(route.provider.send(message))
        except Exception as exc:
            wait = getattr(exc, "retry_after", None)
            if wait is not None:
                route.bucket.pause(
                    wait
                )  # the gateway's own limit: nothing more on this channel till then
            raise

    def reconcile(self, message: OutgoingMessage) -> Receipt | bool | None:
        provider = self.route(message.channel).provider
        if isinstance(provider, Reconciling):
            return provider.reconcile(message)
        return provider.delivered(message.idempotency_key)

    def delivered(self, idempotency_key: str) -> bool | None:
        return None  # the channel is needed to know whom to ask: the dispatcher calls ``reconcile``


def channels_from_config(
    config: Config | None,
    *,
    legacy_url: str | None = None,
    env: Mapping[str, str] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> ChannelRouter:
    """The router for ``config``; without one, ``CONVEYOR_PROVIDER``'s webhook (``legacy_url``) for every
    channel, or recording only. A config wins over ``CONVEYOR_PROVIDER`` (a warning says so).
    ``monotonic`` is the rate limits' clock (a test's virtual one)."""
    env = os.environ if env is None else env
    timeout = default_timeout(env)
    if config is None:
        if legacy_url and legacy_url != "record":
            from engine.outbox.providers import provider_from_url

            return ChannelRouter({}, provider_from_url(legacy_url, env=env))
        return ChannelRouter({})
    if legacy_url and legacy_url != "record":
        log.warning(
            "CONVEYOR_PROVIDER is ignored: the channels come from %s",
            config.source or "the config file",
        )
    routes: dict[str, Route] = {}
    for channel, cfg in config.channels.items():
        try:
            provider = _provider(cfg, cfg.timeout or timeout)
        except ValueError as exc:
            raise ConfigInvalid(config.source or "config", [f"channels.{channel}: {exc}"]) from None
        rate = (
            cfg.rate_per_second
            if cfg.rate_per_second is not None
            else DEFAULT_RATES.get(provider.name)
        )
        routes[channel] = Route(
            provider, TokenBucket(rate, cfg.burst, channel=channel, clock=monotonic)
        )
    return ChannelRouter(routes)


def _provider(cfg: object, timeout: float) -> MessageProvider:
    if isinstance(cfg, RecordChannel):
        return RecordingProvider()
    if isinstance(cfg, SmtpChannel):
        return SmtpProvider(
            cfg.url,
            sender=cfg.from_,
            reply_to=cfg.reply_to,
            username=cfg.username,
            password=cfg.password.get_secret_value() if cfg.password else None,
            starttls=cfg.starttls,
            timeout=timeout,
            tls_context=ssl.create_default_context(cafile=cfg.ca_file) if cfg.ca_file else None,
        )
    if isinstance(cfg, TelegramChannel):
        return TelegramProvider(
            cfg.token.get_secret_value(),
            base_url=cfg.base_url,
            timeout=timeout,
            parse_mode=cfg.parse_mode,
        )
    if isinstance(cfg, TwilioChannel):
        return TwilioProvider(
            cfg.account_sid,
            cfg.auth_token.get_secret_value(),
            sender=cfg.from_,
            messaging_service_sid=cfg.messaging_service_sid,
            base_url=cfg.base_url,
            status_callback=cfg.status_callback,
            timeout=timeout,
        )
    if isinstance(cfg, WebhookChannel):
        return WebhookProvider(
            cfg.url,
            timeout=timeout,
            secret=cfg.secret.get_secret_value(),
            setting="url of the channel in the config file",
        )
    raise TypeError(f"no provider for {type(cfg).__name__}")

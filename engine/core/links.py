"""Tracking links: ``{proposal_link}`` in a message becomes a signed, expiring link to ``GET /t/{token}``.

The token (itsdangerous, keyed by the server's secret key) carries only the deal's id and when it was
signed; opening it records the funnel's ``proposal_opened`` event once per proposal and sends the
client on to the proposal's URL, the ``url`` recorded with ``proposal_attached``. A forged or expired
token records nothing. ``CONVEYOR_PUBLIC_URL`` is where clients reach the API (default
http://127.0.0.1:8000); ``CONVEYOR_LINK_DAYS`` how long a link works (default 30).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from engine.clock import Clock
from engine.core.access import Actor, ActorKind, Role
from engine.core.context import Context
from engine.core.deals import Deals
from engine.core.keyring import Keyring
from storage import repositories as repo

__all__ = ["ATTACHED", "OPENED", "LinkOpened", "Links", "link_days", "public_url"]

ATTACHED, OPENED = "proposal_attached", "proposal_opened"
SALT = "conveyor.proposal-link"
DEFAULT_DAYS = 30


def public_url() -> str:
    return (os.environ.get("CONVEYOR_PUBLIC_URL", "").strip() or "http://127.0.0.1:8000").rstrip(
        "/"
    )


def link_days() -> float:
    raw = os.environ.get("CONVEYOR_LINK_DAYS", "").strip()
    try:
        days = float(raw) if raw else DEFAULT_DAYS
    except ValueError:
        days = DEFAULT_DAYS
    return days if days > 0 else DEFAULT_DAYS


@dataclass(frozen=True)
class LinkOpened:
    """What a valid link leads to: the proposal's URL (None when none was recorded) and whether this
    opening was the one recorded."""

    url: str | None
    recorded: bool


def _signer_on(clock: Clock) -> type[TimestampSigner]:
    class ClockSigner(TimestampSigner):
        def get_timestamp(self) -> int:  # the injected clock, not time.time()
            return int(clock.now().timestamp())

    return ClockSigner


class Links:
    def __init__(self, context: Context, keyring: Keyring, deals: Deals):
        self._context = context
        self._keyring = keyring
        self._deals = deals

    def _serializer(self, clock: Clock | None = None) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self._keyring.subkey("links"),
            salt=SALT,
            signer=_signer_on(clock or self._context.clock),
        )

    def token(self, deal_id: int, *, signed_at: datetime | None = None) -> str:
        clock = self._context.clock if signed_at is None else _Fixed(signed_at)
        return str(self._serializer(clock).dumps({"d": deal_id}))

    def proposal_link(self, deal_id: int) -> str:
        return f"{public_url()}/t/{self.token(deal_id)}"

    def deal_of(self, token: str) -> int | None:
        """The deal a token names, or None if it is forged, damaged or expired."""
        try:
            payload: Any = self._serializer().loads(
                token, max_age=int(timedelta(days=link_days()).total_seconds())
            )
        except (BadData, ValueError, TypeError, UnicodeError):
            return None
        deal_id = payload.get("d") if isinstance(payload, dict) else None
        return deal_id if isinstance(deal_id, int) and not isinstance(deal_id, bool) else None

    def open(self, token: str) -> LinkOpened | None:
        """Record ``proposal_opened`` (once per proposal attached) and say where to go; None for a bad token."""
        deal_id = self.deal_of(token)
        if deal_id is None:
            return None
        with self._context.read_transaction() as s:
            if repo.get_deal(s, deal_id) is None:
                return None
            attached = repo.list_signals(s, deal_id, ATTACHED)
            opened = repo.list_signals(s, deal_id, OPENED)
        url = next(
            (
                str(a.data["url"])
                for a in reversed(attached)
                if isinstance(a.data, dict) and isinstance(a.data.get("url"), str)
            ),
            None,
        )
        if opened and (not attached or opened[-1].at >= attached[-1].at):
            return LinkOpened(url, recorded=False)
        self._deals.record_event(
            deal_id, OPENED, actor=Actor(ActorKind.SYSTEM, "client", Role.INTEGRATION)
        )
        return LinkOpened(url, recorded=True)


class _Fixed:
    def __init__(self, at: datetime):
        self._at = at

    def now(self) -> datetime:
        return self._at

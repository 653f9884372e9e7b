"""Tracking links: a message's ``{<placeholder>}`` becomes a signed, expiring link to ``GET /t/{token}``.

The funnel document declares them: an event with a ``link`` (``EventDef.link``) carries a URL in its
data; ``{<link.placeholder>}`` in a template links to it. The token (itsdangerous, keyed by the
server's secret key) carries only the deal's id, the event's name and when it was signed. Opening it
records the declared event ``link.opened`` once per occurrence of the carrying event (checked and
recorded in one transaction under the deal's lock, so simultaneous opens record it once) and sends
the client on to the URL of the latest occurrence. A forged or expired token records nothing.
``CONVEYOR_PUBLIC_URL`` is where clients reach the API (default http://127.0.0.1:8000);
``CONVEYOR_LINK_DAYS`` how long a link works (default 30).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.core.access import Actor, ActorKind, Role
from engine.core.context import Context
from engine.core.deals import Deals
from engine.core.keyring import Keyring
from engine.core.rulesets import RuleSets
from engine.document.ruleset import EventLink, RuleSet
from engine.errors import InvalidChange
from engine.i18n import _
from storage import repositories as repo
from storage.models import Deal

__all__ = ["LinkOpened", "Links", "link_days", "public_url"]

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
    def __init__(self, context: Context, keyring: Keyring, deals: Deals, rulesets: RuleSets):
        self._context = context
        self._keyring = keyring
        self._deals = deals
        self._rulesets = rulesets

    def _serializer(self, clock: Clock | None = None) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self._keyring.subkey("links"),
            salt=SALT,
            signer=_signer_on(clock or self._context.clock),
        )

    def token(self, deal_id: int, event: str, *, signed_at: datetime | None = None) -> str:
        """A signed token for the link of ``event`` (a declared event with a ``link``) of a deal."""
        clock = self._context.clock if signed_at is None else _Fixed(signed_at)
        return str(self._serializer(clock).dumps({"d": deal_id, "e": event}))

    def url(self, deal_id: int, event: str) -> str:
        """The link a message shows for ``{<placeholder>}`` of ``event``."""
        return f"{public_url()}/t/{self.token(deal_id, event)}"

    def target(self, token: str) -> tuple[int, str | None] | None:
        """(deal, event) a token names (event None in a token signed before links were declared),
        or None if it is forged, damaged or expired."""
        try:
            payload: Any = self._serializer().loads(
                token, max_age=int(timedelta(days=link_days()).total_seconds())
            )
        except (BadData, ValueError, TypeError, UnicodeError):
            return None
        if not isinstance(payload, dict):
            return None
        deal_id, event = payload.get("d"), payload.get("e")
        if not isinstance(deal_id, int) or isinstance(deal_id, bool):
            return None
        return deal_id, event if isinstance(event, str) else None

    def open(self, token: str) -> LinkOpened | None:
        """Record the link's ``opened`` event (once per occurrence of the event carrying it) and say
        where to go; None for a bad token or a deal that is gone."""
        target = self.target(token)
        if target is None:
            return None
        deal_id, name = target
        with self._context.read_transaction() as s:
            deal = repo.get_deal(s, deal_id)
            if deal is None:
                return None
            carrier, link = _carrier(self._rulesets.active(s, deal.funnel_id)[0], name)
            attached = repo.list_signals(s, deal_id, carrier)
        key = link.url
        url = next(
            (
                str(a.data[key])
                for a in reversed(attached)
                if isinstance(a.data, dict) and isinstance(a.data.get(key), str)
            ),
            None,
        )

        def not_opened_yet(s: Session, deal: Deal, rs: RuleSet) -> bool:
            # Under the deal's lock, in the event's own transaction: of simultaneous opens one records.
            event, now_link = _carrier(rs, name)
            opened = repo.list_signals(s, deal.id, now_link.opened)
            carried = repo.list_signals(s, deal.id, event)
            return not opened or bool(carried and opened[-1].at < carried[-1].at)

        recorded = self._deals.record_event(
            deal_id,
            link.opened,
            actor=Actor(ActorKind.SYSTEM, "client", Role.INTEGRATION),
            only_if=not_opened_yet,
        )
        return LinkOpened(url, recorded=recorded)


def _carrier(rs: RuleSet, name: str | None) -> tuple[str, EventLink]:
    """The declared event whose link a token names (a token without a name: the funnel's first)."""
    found = next(
        ((e.name, e.link) for e in rs.events if e.link and (name is None or e.name == name)), None
    )
    if found is None:
        raise InvalidChange(
            _("funnel '{funnel}' declares no tracking link on event '{event}'").format(
                funnel=rs.funnel, event=name
            )
            if name
            else _("funnel '{funnel}' declares no tracking link").format(funnel=rs.funnel)
        )
    return found


class _Fixed:
    def __init__(self, at: datetime):
        self._at = at

    def now(self) -> datetime:
        return self._at

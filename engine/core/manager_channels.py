"""Where a manager is told of things: a preferred channel and the address on it (``conveyor.manager_channels``).

A preference is written ``channel:address`` (``telegram:12345``, ``email:olena@techflow.example``,
``sms:+380501110001``), or ``none`` to clear it. It is an address, never a secret. The channel must
be one the config file configures: otherwise every notification would only be recorded, and the
manager would believe they are reached. Nothing is saved when a preference is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from engine.core.access import Actor, ActorKind, Permission, Role, actor_of, require
from engine.core.context import Context
from engine.errors import Forbidden, InvalidChange, NotFound
from engine.i18n import gettext as _
from storage import deliveries
from storage import repositories as repo

__all__ = [
    "MANAGER_CHANNELS",
    "ManagerChannels",
    "Preference",
    "SentToManager",
    "check_address",
    "parse_preference",
]

#: Channels a manager may be reached on (a client's ``viber``/``whatsapp`` need a business account).
MANAGER_CHANNELS = ("telegram", "email", "sms")

_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_TELEGRAM = re.compile(r"^-?[0-9]{1,20}$|^@[A-Za-z][A-Za-z0-9_]{4,31}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{5,22}$")


@dataclass(frozen=True)
class Preference:
    """A manager's channel and address; ``channel`` None: notifications are only recorded."""

    manager: str
    channel: str | None
    address: str | None

    def __str__(self) -> str:
        return f"{self.channel}:{self.address}" if self.channel else "none"


@dataclass(frozen=True)
class SentToManager:
    """One message to a manager, as the settings page lists it."""

    created_at: datetime
    channel: str
    to: str
    status: str
    text: str


def check_address(channel: str, address: str, *, field: str = "notify") -> str:
    """The address, stripped, if it is one on ``channel``; else ``InvalidChange`` naming ``field``."""
    address = address.strip()
    if channel == "email" and not _EMAIL.match(address):
        raise InvalidChange(
            _("{field}: {address!r} is not an e-mail address").format(field=field, address=address)
        )
    if channel == "telegram" and not _TELEGRAM.match(address):
        raise InvalidChange(
            _(
                "{field}: {address!r} is not a Telegram chat id (digits, e.g. 12345, or @channel_name)"
            ).format(field=field, address=address)
        )
    if channel == "sms":
        digits = re.sub(r"\D", "", address)
        if not _PHONE.match(address) or not 7 <= len(digits) <= 15:
            raise InvalidChange(
                _("{field}: {address!r} is not a phone number").format(field=field, address=address)
            )
    return address


def parse_preference(
    text: str, configured: Collection[str], *, field: str = "notify"
) -> tuple[str | None, str | None]:
    """``channel:address`` → (channel, address) checked against the ``configured`` channels; ``none`` → (None, None)."""
    text = (text or "").strip()
    if text.lower() in ("", "none", "-"):
        return None, None
    channel, sep, address = text.partition(":")
    channel = channel.strip().lower()
    if not sep or not address.strip():
        raise InvalidChange(
            _(
                "{field}: write channel:address, e.g. telegram:12345 or email:name@example.com"
            ).format(field=field)
        )
    if channel not in MANAGER_CHANNELS:
        raise InvalidChange(
            _("{field}: '{channel}' is not a channel for managers (channels: {known})").format(
                field=field, channel=channel, known=", ".join(MANAGER_CHANNELS)
            )
        )
    if channel not in configured:
        raise InvalidChange(
            _(
                "{field}: the channel '{channel}' is not configured in the config file"
                " (configured: {known})"
            ).format(field=field, channel=channel, known=", ".join(sorted(configured)) or "none")
        )
    return channel, check_address(channel, address, field=field)


class ManagerChannels:
    """Read and set managers' preferences; ``configured()`` names the channels the config configures."""

    def __init__(self, context: Context, configured: Callable[[], Collection[str]]):
        self._context = context
        self._configured = configured

    def configured(self) -> list[str]:
        """The channels a manager may choose: those configured and meant for managers."""
        have = set(self._configured())
        return [c for c in MANAGER_CHANNELS if c in have]

    def get(self, manager: str) -> Preference:
        with self._context.transaction() as s:
            m = repo.get_manager_by_name(s, manager)
            if m is None:
                raise NotFound(_("no manager named '{name}'").format(name=manager))
            return Preference(m.name, m.notify_channel, m.notify_address)

    def set(self, manager: str, preference: str, *, actor: Actor | str = "system") -> Preference:
        """Set ``manager``'s preference (``channel:address`` or ``none``): the owner for anyone, a
        manager for themselves."""
        who = actor_of(actor)
        own = who.kind is ActorKind.USER and who.role is Role.MANAGER and who.name == manager
        if not own:
            try:
                require(who, Permission.MANAGE_MANAGERS)
            except Forbidden:
                raise Forbidden(
                    _("a manager may set only their own notification channel")
                ) from None
        channel, address = parse_preference(preference, self.configured())
        with self._context.transaction() as s:
            m = repo.get_manager_by_name(s, manager)
            if m is None:
                raise NotFound(_("no manager named '{name}'").format(name=manager))
            m.notify_channel, m.notify_address = channel, address
            return Preference(m.name, channel, address)

    def unreachable(self) -> list[str]:
        """Active managers told only in the builder: no channel, or one the config file does not
        configure (any more). Their notifications, urgent tasks and digests are only ``recorded``."""
        configured = set(self.configured())
        with self._context.read_transaction() as s:
            return [
                m.name
                for m in repo.list_managers(s)
                if m.active and not (m.notify_channel in configured and m.notify_address)
            ]

    def recent(self, manager: str, limit: int = 10) -> list[SentToManager]:
        """The latest messages to ``manager``, newest first, with their states."""
        with self._context.transaction() as s:
            m = repo.get_manager_by_name(s, manager)
            if m is None:
                raise NotFound(_("no manager named '{name}'").format(name=manager))
            return [
                SentToManager(x.created_at, x.channel, x.to, x.status, x.text)
                for x in deliveries.messages_to_manager(s, m.id, limit)
            ]

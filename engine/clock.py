"""Injected time: every engine decision reads ``clock.now()``, never the wall clock directly.

``SystemClock`` is used by the service; ``VirtualClock`` lets the simulator and tests run months in seconds.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DISPLAY_ZONE = "Europe/Kyiv"


class Clock(Protocol):
    def now(self) -> datetime: ...


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant; a trailing ``Z`` and naive values mean UTC."""
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def format_instant(dt: datetime) -> str:
    """ISO-8601 UTC with a ``Z``, seconds precision (the simulator's output format)."""
    return utc(dt).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


_warned_zones: set[str] = set()


def display_zone(strict: bool = False) -> ZoneInfo:
    """The zone times are shown in (``CONVEYOR_TZ``, default Europe/Kyiv); storage is always UTC.

    An unknown ``CONVEYOR_TZ`` falls back to Europe/Kyiv with a warning logged once per name (a page
    or a listing should not fail over how it shows times); ``strict=True`` raises ``ValueError`` instead.
    """
    name = os.environ.get("CONVEYOR_TZ", "").strip() or DEFAULT_DISPLAY_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"CONVEYOR_TZ={name!r} is not a known time zone (e.g. Europe/Kyiv, UTC)"
        if strict:
            raise ValueError(message) from None
        if name not in _warned_zones:
            _warned_zones.add(name)
            logging.getLogger(__name__).warning(
                "%s; showing times in %s", message, DEFAULT_DISPLAY_ZONE
            )
        return ZoneInfo(DEFAULT_DISPLAY_ZONE)


def for_display(dt: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC instant in the display zone, e.g. ``2026-03-02 11:05``; empty for None."""
    return "" if dt is None else utc(dt).astimezone(display_zone()).strftime(fmt)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime):
        self._now = utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        when = utc(when)
        if when < self._now:
            raise ValueError(f"virtual clock cannot go back from {self._now} to {when}")
        self._now = when

    def advance(self, delta: timedelta) -> None:
        self._now = self._now + delta

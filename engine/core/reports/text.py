"""How the manager pages say things: times in the display zone, durations; the sentences about deals
(events, actions, why a rule fired, task states) are ``engine.core.explain``'s, re-exported here."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from engine import clock
from engine.core.explain import (
    action_summary,
    describe_event,
    event_label,
    event_text,
    kind_label,
    short,
    stage_name,
    task_status_text,
    why_text,
)
from engine.i18n import _

__all__ = [
    "ACTION_STATUSES",
    "HIGH_PRIORITIES",
    "action_summary",
    "describe_event",
    "display_zone",
    "event_label",
    "event_text",
    "hours_text",
    "kind_label",
    "short",
    "stage_name",
    "task_status_text",
    "to_display",
    "why_text",
]

HIGH_PRIORITIES = ("high",)  # engine.actions.PRIORITIES: low, normal, high


ACTION_STATUSES = ("pending", "sending", "done", "failed", "dead")


def display_zone() -> ZoneInfo:
    """The zone times are shown in: ``engine.clock.display_zone`` (``CONVEYOR_TZ``, default Europe/Kyiv;
    an unknown name falls back to Europe/Kyiv with a logged warning, so a page never fails over it)."""
    return clock.display_zone()


def to_display(dt: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC instant as text in the display zone ('' for none); ``engine.clock.for_display``."""
    return clock.for_display(dt, fmt)


def hours_text(hours: float | None) -> str:
    """48.5 → '2 d 0 h', 5.2 → '5 h 12 min': how long something has been waiting."""
    if hours is None:
        return ""
    minutes = int(round(abs(hours) * 60))
    d, rem = divmod(minutes, 24 * 60)
    h, m = divmod(rem, 60)
    if d:
        text = _("{days} d {hours} h").format(days=d, hours=h)
    elif h:
        text = _("{hours} h {minutes} min").format(hours=h, minutes=m)
    else:
        text = _("{minutes} min").format(minutes=m)
    return f"-{text}" if hours < 0 else text

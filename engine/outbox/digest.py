"""Each manager's daily digest (their open tasks due today and overdue), queued in the outbox.

``Digests.queue_due`` queues, once the day's digest hour has come (``[digest] hour`` in the display
zone), one message per manager with something on their list, keyed ``digest:<manager>:<date>``: the
outbox's unique idempotency key makes it exactly one per manager per day across restarts and
several engines. APScheduler's ``CronTrigger`` tells when the hour comes (DST included); the service
uses it only as a wake-up (``schedule``), and an engine that starts after the hour catches up. The
durable state is the outbox row; nothing is kept in APScheduler's job store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from engine.clock import display_zone, utc
from engine.config import DigestConfig
from engine.core.context import Context
from engine.i18n import gettext as _
from engine.i18n import ngettext
from engine.outbox import manager_messages
from storage.models import Deal, Manager, Task

__all__ = ["Digests", "digest_key"]

log = logging.getLogger("conveyor.digest")

#: Most tasks one digest lists (the rest are counted): a message must stay readable on a phone.
MAX_LINES = 30


def digest_key(manager_id: int, day: date) -> str:
    return f"digest:{manager_id}:{day.isoformat()}"


class Digests:
    """The digest of one database (``Conveyor.digests``): when it is due, what it says, queued once."""

    def __init__(self, context: Context, settings: DigestConfig | None = None):
        self._context = context
        self.settings = settings or DigestConfig()

    def configure(self, settings: DigestConfig) -> None:
        self.settings = settings

    @property
    def zone(self) -> ZoneInfo:
        return display_zone()

    def trigger(self) -> CronTrigger:
        return CronTrigger(hour=self.settings.hour, minute=self.settings.minute, timezone=self.zone)

    def due_day(self, now: datetime) -> date | None:
        """The local day whose digest is due at ``now`` (its hour has come), else None."""
        if not self.settings.enabled:
            return None
        local = utc(now).astimezone(self.zone)
        midnight = datetime.combine(local.date(), time(0), tzinfo=self.zone)
        fire: datetime | None = self.trigger().get_next_fire_time(None, midnight)
        return local.date() if fire is not None and utc(fire) <= utc(now) else None

    def next_at(self, now: datetime) -> datetime | None:
        """When the next digest hour comes after ``now`` (UTC), as the trigger computes it."""
        if not self.settings.enabled:
            return None
        fire: datetime | None = self.trigger().get_next_fire_time(
            None, utc(now).astimezone(self.zone) + timedelta(microseconds=1)
        )
        return utc(fire) if fire is not None else None

    def queue_due(self, now: datetime | None = None) -> int:
        """Queue today's digest for every active manager with open tasks due today or overdue, unless
        queued already (by this engine, an earlier run or another engine). Returns how many were queued."""
        now = now or self._context.clock.now()
        day = self.due_day(now)
        if day is None:
            return 0
        end_of_day = utc(
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
        )  # a DST day is 23 or 25 hours long: the zone says where it ends
        queued = 0
        with self._context.transaction() as s:
            managers = list(
                s.scalars(select(Manager).where(Manager.active.is_(True)).order_by(Manager.id))
            )
            for manager in managers:
                rows = s.execute(
                    select(Task, Deal)
                    .join(Deal, Deal.id == Task.deal_id)
                    .where(
                        Task.manager_id == manager.id,
                        Task.status == "open",
                        Task.kind == "task",
                        Task.due_at < end_of_day,
                    )
                    .order_by(Task.due_at, Task.id)
                ).all()
                if not rows:
                    continue
                text = self.text(manager.name, day, now, [(t, d) for t, d in rows])
                subject = _("Your tasks for {day}").format(day=day.isoformat())
                if manager_messages.queue_once(
                    s,
                    manager_id=manager.id,
                    text=text,
                    subject=subject,
                    key=digest_key(manager.id, day),
                    now=now,
                ):
                    queued += 1
        if queued:
            log.info("queued %d daily digest(s) for %s", queued, day.isoformat())
        return queued

    def text(self, manager: str, day: date, now: datetime, rows: list[tuple[Any, Any]]) -> str:
        overdue = [(t, d) for t, d in rows if utc(t.due_at) < utc(now)]
        today = [(t, d) for t, d in rows if utc(t.due_at) >= utc(now)]
        lines = [_("Good morning, {name}: your tasks for {day}.").format(name=manager, day=day)]
        shown = 0
        for heading, part in (
            (ngettext("{n} overdue task", "{n} overdue tasks", len(overdue)), overdue),
            (ngettext("{n} task due today", "{n} tasks due today", len(today)), today),
        ):
            if not part:
                continue
            lines.append("")
            lines.append(heading.format(n=len(part)))
            for task, deal in part:
                if shown >= MAX_LINES:
                    break
                due = utc(task.due_at).astimezone(self.zone).strftime("%d.%m %H:%M")
                mark = "❗" if task.priority == "high" else "•"
                lines.append(f"{mark} {due} {task.title} — {deal.title or deal.key}")
                shown += 1
        if len(rows) > shown:
            lines.append(_("… and {n} more in the builder").format(n=len(rows) - shown))
        return "\n".join(lines)

    def schedule(self, scheduler: Any, job: Callable[[], None] | None = None) -> Any:
        """Add the digest's wake-up to an APScheduler ``scheduler`` (a job calling ``queue_due``)."""
        return scheduler.add_job(
            job or self.queue_due,
            self.trigger(),
            id="digest",
            name="daily digest",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=3600,
        )

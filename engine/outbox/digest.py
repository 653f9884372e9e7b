"""Each manager's daily digest (their day: tasks due today and overdue, deals that need them), queued in
the outbox in the manager's language.

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
from engine.core.my_day import Day, ManagerDay
from engine.i18n import format_datetime, format_money, format_number, ngettext, use_language
from engine.i18n import gettext as _
from engine.outbox import manager_messages
from storage.models import Manager, OutboxAction

__all__ = ["Digests", "digest_key"]

log = logging.getLogger("conveyor.digest")

#: Most tasks one digest lists (the rest are counted): a message must stay readable on a phone.
MAX_LINES = 30


def digest_key(manager_id: int, day: date) -> str:
    return f"digest:{manager_id}:{day.isoformat()}"


def _local_day(day: date, zone: ZoneInfo) -> str:
    """ "вівторок, 1 грудня" / "Tuesday 1 December": the day in the current language."""
    return format_datetime(datetime.combine(day, time(12), tzinfo=zone), zone, "EEEE, d MMMM")


class Digests:
    """The digest of one database (``Conveyor.digests``): when it is due, what it says, queued once."""

    def __init__(self, context: Context, day: Day, settings: DigestConfig | None = None):
        self._context = context
        self._day = day  # the manager's day (``Conveyor.day``): what the digest lists
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
        """Queue today's digest for every active manager whose day has something on it — open tasks
        due today or overdue, notifications, deals that need them (``Conveyor.day``, the My day
        page's lists) — unless queued already (by this engine, an earlier run or another engine).
        Each is written in the manager's language (their user's). Returns how many were queued."""
        now = now or self._context.clock.now()
        day = self.due_day(now)
        if day is None:
            return 0
        with self._context.read_transaction() as s:
            managers = [
                (m.id, m.name)
                for m in s.scalars(
                    select(Manager).where(Manager.active.is_(True)).order_by(Manager.id)
                )
            ]
            taken = set(
                s.scalars(
                    select(OutboxAction.idempotency_key).where(
                        OutboxAction.idempotency_key.in_([digest_key(i, day) for i, _n in managers])
                    )
                )
            )
        queued = 0
        for manager_id, name in managers:
            key = digest_key(manager_id, day)
            if key in taken:
                continue  # queued already: the day's lists are not even read again
            with self._context.read_transaction() as s:
                language = manager_messages.language_of(s, manager_id)
            with use_language(language):
                lists = self._day.of(manager_id, now=now)
                if not (lists.overdue or lists.today or lists.deals):
                    continue
                text = self.text(name, day, lists)
                subject = _("Your tasks for {day}").format(day=_local_day(day, self.zone))
            with self._context.transaction() as s:
                if manager_messages.queue_once(
                    s, manager_id=manager_id, text=text, subject=subject, key=key, now=now
                ):
                    queued += 1
        if queued:
            log.info("queued %d daily digest(s) for %s", queued, day.isoformat())
        return queued

    def text(self, manager: str, day: date, lists: ManagerDay) -> str:
        """The digest in the current language: what the manager's My day page shows, for a phone."""
        lines = [
            _("Good morning, {name}: your tasks for {day}.").format(
                name=manager, day=_local_day(day, self.zone)
            )
        ]
        shown = 0
        total = len(lists.overdue) + len(lists.today) + len(lists.deals)
        tasks = [
            (ngettext("{n} overdue task", "{n} overdue tasks", len(lists.overdue)), lists.overdue),
            (ngettext("{n} task due today", "{n} tasks due today", len(lists.today)), lists.today),
        ]
        for heading, part in tasks:
            if not part:
                continue
            lines += ["", heading.format(n=len(part))]
            for task in part:
                if shown >= MAX_LINES:
                    break
                mark = "❗" if task.priority == "high" else "•"
                due = self._when(task.due_at, day) if task.kind == "task" else ""
                lines.append(
                    " ".join(p for p in (mark, due, task.title) if p)
                    + f" — {task.deal_title or task.deal_key}"
                )
                shown += 1
        if lists.deals:
            lines += [
                "",
                ngettext("{n} deal needs you", "{n} deals need you", len(lists.deals)).format(
                    n=len(lists.deals)
                ),
            ]
            for deal in lists.deals:
                if shown >= MAX_LINES:
                    break
                amount = (
                    f", {format_money(deal.amount, deal.currency) if deal.currency else format_number(deal.amount)}"
                    if deal.amount is not None
                    else ""
                )
                why = "; ".join(r.text for r in deal.reasons)
                lines.append(
                    f"• {deal.deal_title or deal.deal_key} ({deal.stage_name}{amount}): {why}"
                )
                shown += 1
        if total > shown:
            lines.append(_("… and {n} more in the builder").format(n=total - shown))
        return "\n".join(lines)

    def _when(self, due: datetime | None, day: date) -> str:
        """A due time the reader's way: the hour for today, the date and hour for an earlier day."""
        if due is None:
            return ""
        local = utc(due).astimezone(self.zone)
        return format_datetime(due, self.zone, "HH:mm" if local.date() == day else "d MMM, HH:mm")

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

"""A manager's day: their tasks due today and overdue, and their deals that need them now.

A deal needs its manager when a stage it may move to waits for fields it lacks (the entry guard),
when nobody has touched it for a day, or when the client opened what a tracking link carries (the
"opened" event the funnel declares on an event's ``link``; no event name is known here). Read-only,
``Conveyor.day``; the builder's "My day" page and any other door read the same lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from engine import clock
from engine.core.context import Context
from engine.core.deal_input import blank
from engine.core.explain import event_label, field_label, stage_name, task_title
from engine.core.rulesets import RuleSets
from engine.document.ruleset import RuleSet
from engine.i18n import _
from engine.rules.deal import BUILTIN_FIELDS
from engine.rules.registry import event_at
from storage import repositories as repo
from storage.models import Deal

__all__ = ["IDLE_HOURS", "Day", "DayTask", "ManagerDay", "NeedsMe", "Reason"]

#: A deal nobody has touched for this long needs its manager.
IDLE_HOURS = 24.0


@dataclass(frozen=True)
class DayTask:
    id: int
    kind: str  # task | notification
    title: str
    priority: str
    due_at: datetime | None
    overdue: bool
    deal_id: int
    deal_key: str
    deal_title: str
    funnel: str
    stage_name: str
    manager: str


@dataclass(frozen=True)
class Reason:
    kind: str  # guard | idle | opened
    text: str


@dataclass(frozen=True)
class NeedsMe:
    deal_id: int
    deal_key: str
    deal_title: str
    funnel: str
    stage_name: str
    manager: str
    reasons: list[Reason] = field(default_factory=list)
    amount: float | None = None
    currency: str | None = None  # the funnel's, when it names one


@dataclass(frozen=True)
class ManagerDay:
    overdue: list[DayTask]
    today: list[DayTask]
    deals: list[NeedsMe]


class Day:
    """The lists of one manager's day (or the whole team's), each read in one read-only transaction."""

    def __init__(self, context: Context, rulesets: RuleSets):
        self._context = context
        self._rulesets = rulesets

    def of(
        self,
        manager_id: int | None,
        *,
        funnel: str | None = None,
        now: datetime | None = None,
        idle_hours: float = IDLE_HOURS,
    ) -> ManagerDay:
        """``manager_id``: that manager's day; None: the whole team's (an owner, a manager who sees the team)."""
        now = now or self._context.clock.now()
        zone = clock.display_zone()
        local = now.astimezone(zone)
        end_of_today = datetime.combine(local.date() + timedelta(days=1), time(), zone)
        rulesets: dict[str, RuleSet] = {}
        with self._context.read_transaction() as s:

            def rs_of(funnel_id: str) -> RuleSet:
                if funnel_id not in rulesets:
                    rulesets[funnel_id] = self._rulesets.active(s, funnel_id)[0]
                return rulesets[funnel_id]

            names = repo.manager_names(s)
            overdue: list[DayTask] = []
            today: list[DayTask] = []
            for t, d in repo.list_tasks_with_deals(
                s, statuses=["open"], funnel_id=funnel, manager_id=manager_id, limit=100_000
            ):
                late = t.kind == "task" and t.due_at is not None and t.due_at < now
                # A notification is for now (a delayed one from its time on); a task counts today
                # when it falls due before midnight.
                if t.kind != "task" and t.due_at is not None and t.due_at > now:
                    continue
                if (
                    not late
                    and t.kind == "task"
                    and t.due_at is not None
                    and t.due_at >= end_of_today
                ):
                    continue
                item = DayTask(
                    t.id,
                    t.kind,
                    task_title(t.title, t.titles),
                    t.priority,
                    t.due_at,
                    late,
                    d.id,
                    d.key,
                    d.title or "",
                    d.funnel_id,
                    stage_name(rs_of(d.funnel_id), d.stage),
                    names.get(t.manager_id, "") if t.manager_id else "",
                )
                (overdue if late else today).append(item)
            deals = []
            for d in repo.list_deals(s, funnel, open_only=True, manager_id=manager_id):
                if manager_id is None and d.manager_id is None:
                    continue  # nobody's deal is on nobody's day: the board shows it
                rs = rs_of(d.funnel_id)
                reasons = needs(rs, d, now, idle_hours)
                if reasons:
                    deals.append(
                        NeedsMe(
                            d.id,
                            d.key,
                            d.title or "",
                            d.funnel_id,
                            stage_name(rs, d.stage),
                            names.get(d.manager_id, "") if d.manager_id else "",
                            reasons,
                            d.amount,
                            rs.currency,
                        )
                    )
        overdue.sort(key=lambda t: (t.priority != "high", t.due_at or now, t.id))
        today.sort(key=lambda t: (t.priority != "high", t.due_at or now, t.id))
        return ManagerDay(overdue, today, deals)


def needs(rs: RuleSet, deal: Deal, now: datetime, idle_hours: float = IDLE_HOURS) -> list[Reason]:
    """Why ``deal`` needs its manager now, in the funnel's words (empty: it does not)."""
    out = []
    opened = {ev.link.opened for ev in rs.events if ev.link is not None}
    last = deal.last_activity_at
    for name in sorted(opened):
        at = event_at(deal, name)
        visit = (deal.signals or {}).get(name, {}).get("visit")
        if at is not None and visit == deal.stage_visit and (last is None or last < at):
            out.append(
                Reason(
                    "opened",
                    _("{event} {ago} ago; nobody has called since").format(
                        event=event_label(rs, name), ago=_hours((now - at).total_seconds() / 3600)
                    ),
                )
            )
    for target, missing in _blocked_moves(rs, deal):
        out.append(
            Reason(
                "guard",
                _("To move to {stage}, fill in: {fields}").format(
                    stage=stage_name(rs, target),
                    fields=", ".join(field_label(rs, f) for f in missing),
                ),
            )
        )
    quiet = (now - (last or deal.created_at)).total_seconds() / 3600
    if quiet >= idle_hours:
        out.append(Reason("idle", _("No activity for {time}").format(time=_hours(quiet))))
    return out


def _blocked_moves(rs: RuleSet, deal: Deal) -> list[tuple[str, list[str]]]:
    """The stages the deal may move to whose entry guard lacks fields, with those fields."""
    targets = [t.to for t in rs.transitions if t.from_ == deal.stage] or (
        [] if rs.transitions else [st.id for st in rs.stages if st.id != deal.stage]
    )
    out = []
    for target in targets:
        st = rs.stage(target)
        if st is None or st.guard is None:
            continue
        missing = [
            f
            for f in st.guard.required_fields
            if blank(getattr(deal, f) if f in BUILTIN_FIELDS else (deal.fields or {}).get(f))
        ]
        if missing:
            out.append((target, missing))
    return out


def _hours(hours: float) -> str:
    if hours >= 48:
        return _("{n} d").format(n=int(hours // 24))
    if hours >= 1:
        return _("{n} h").format(n=int(hours))
    return _("{n} min").format(n=max(int(hours * 60), 1))

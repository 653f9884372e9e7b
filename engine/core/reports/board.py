"""The deal board, the deal card, the task queue and the action log: ``Reports``, ``Conveyor.reports``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.core.access import Actor, Permission, require
from engine.core.context import Context
from engine.core.explain import task_title
from engine.core.queries import Queries
from engine.core.reports.analytics import Analytics
from engine.core.reports.text import (
    HIGH_PRIORITIES,
    action_summary,
    describe_event,
    kind_label,
    stage_name,
    task_status_text,
    why_text,
)
from engine.core.rulesets import RuleSets
from engine.document.labels import label
from engine.document.ruleset import RuleSet
from engine.errors import Forbidden, NotFound
from engine.i18n import _
from engine.rules.deal import DealState
from engine.rules.registry import with_event
from storage import deliveries
from storage import repositories as repo

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DealCard", "Reports", "sample_deal"]


@dataclass
class DealCard:
    """One deal as its page shows it: the state plus everything that happened to it."""

    state: DealState
    ruleset: RuleSet
    stage_name: str
    allowed_moves: list[tuple[str, str]]  # (stage id, stage name)
    events: pd.DataFrame
    tasks: pd.DataFrame
    messages: pd.DataFrame
    invoices: pd.DataFrame
    actions: pd.DataFrame
    parent_key: str | None = None


_ACTION_COLUMNS = [
    "id",
    "created_at",
    "updated_at",
    "rule_id",
    "rule_name",
    "deal_id",
    "deal_key",
    "deal_title",
    "funnel",
    "action",
    "summary",
    "status",
    "attempts",
    "error",
    "reason",
    "version",
    "trigger",
    "message",
    "gateway_id",
    "recipient",  # who the message is to: the client's address, or the manager's name
    "manager_id",  # the manager a message to a manager is for (None for a firing's action)
]


def _action_rows(
    rows: list[tuple[Any, Any, Any]],
    versions: dict[int, tuple[str, int]],
    names: dict[int, str],
    messages: dict[int, Any] | None = None,
    ruleset_of: Callable[[int], RuleSet] | None = None,
) -> pd.DataFrame:
    import pandas as pd

    out = []
    for o, f, d in rows:
        m = (messages or {}).get(o.id)
        if f is None:  # a message to a manager: no firing, perhaps no deal (the digest)
            out.append(_manager_row(o, d, m, names))
            continue
        # Why it fired, in the words of the version that fired it (its rule's thresholds, its labels).
        rs = ruleset_of(f.ruleset_version_id) if ruleset_of is not None else None
        out.append(
            {
                "message": m.status if m is not None else "",
                "gateway_id": (m.provider_ref or "") if m else "",
                "id": o.id,
                "created_at": o.created_at,
                "updated_at": o.updated_at,
                "rule_id": f.rule_id,
                "rule_name": f.rule_name or f.rule_id,
                "deal_id": d.id,
                "deal_key": d.key,
                "deal_title": d.title or "",
                "funnel": d.funnel_id,
                "action": o.action,
                "summary": action_summary(o.action, o.result or o.params or {}, rs),
                "status": o.status,
                "attempts": o.attempts,
                "error": o.last_error or "",
                "reason": why_text(rs, rs.rule(f.rule_id), f.values or {})
                if rs is not None
                else ", ".join(f"{k} = {v}" for k, v in (f.values or {}).items()),
                "version": versions.get(f.ruleset_version_id, ("", 0))[1],
                "trigger": f.trigger,
                "recipient": (m.to if m is not None else ""),
                "manager_id": None,
            }
        )
    return pd.DataFrame(out, columns=_ACTION_COLUMNS)


def _manager_row(o: Any, d: Any, m: Any, names: dict[int, str]) -> dict[str, Any]:
    """A message to a manager as a log row: the manager is its recipient; the rule it tells of (a
    notification, an urgent task) or, for the digest, none."""
    params = o.params or {}
    manager = names.get(o.manager_id, "") if o.manager_id else ""
    digest = o.action == "manager_digest"
    rule = str(params.get("rule", "")) if not digest else ""
    what = str(params.get("subject") or params.get("text") or "")
    skipped = (o.result or {}).get("skipped")  # not sent: why (its task closed before its time)
    channel = m.channel if m is not None else ""
    return {
        "message": m.status if m is not None else "",
        "gateway_id": (m.provider_ref or "") if m else "",
        "id": o.id,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
        "rule_id": rule or o.action,
        "rule_name": rule or (_("Daily digest") if digest else _("Message to a manager")),
        "deal_id": d.id if d is not None else None,
        "deal_key": d.key if d is not None else "",
        "deal_title": (d.title or "") if d is not None else "",
        "funnel": d.funnel_id if d is not None else "",
        "action": o.action,
        "summary": _("to {manager}").format(manager=manager or "?")
        + (f" ({channel})" if channel else "")
        + (f": {what[:60]}" if what else "")
        + (f" · {skipped}" if skipped else ""),
        "status": o.status,
        "attempts": o.attempts,
        "error": o.last_error or "",
        "reason": _("tells manager {manager}").format(manager=manager or "?"),
        "version": 0,
        "trigger": "",
        "recipient": manager,
        "manager_id": o.manager_id,
    }


def sample_deal(
    funnel: str,
    stage: str,
    at: datetime,
    *,
    hours_in_stage: float = 0.0,
    hours_since_created: float = 0.0,
    hours_since_last_activity: float | None = None,
    events: dict[str, float | None] | None = None,
    has_manager: bool = True,
    amount: float | None = None,
    title: str = "Sample deal",
    phone: str = "",
    fields: dict[str, Any] | None = None,
) -> DealState:
    """A made-up deal for a dry run: each "hours since" is counted back from ``at`` ("now").

    ``events``: declared events that happened in the current stage visit, each with how many hours
    ago (None: not happened).
    """

    def ago(hours: float) -> datetime:
        return at - timedelta(hours=hours)

    created = ago(max(hours_since_created, hours_in_stage))
    state = DealState(
        id=0,
        key="SAMPLE",
        funnel=funnel,
        stage=stage,
        created_at=created,
        stage_entered_at=ago(hours_in_stage),
        title=title,
        phone=phone,
        amount=amount,
        manager_id=-1 if has_manager else None,
        manager_name="Sample manager" if has_manager else None,
        last_activity_at=None
        if hours_since_last_activity is None
        else ago(hours_since_last_activity),
        fields=dict(fields or {}),
    )
    for name, hours in (events or {}).items():
        if hours is not None:
            state.signals = with_event(state.signals, name, ago(hours), state.stage_visit)
    return state


def _overdue(task: Any, now: datetime) -> bool:
    # A notification is due the moment it is created; only tasks can run late.
    return (
        task.status == "open"
        and task.kind == "task"
        and task.due_at is not None
        and task.due_at < now
    )


def sees(actor: Actor | str | None, manager_id: int | None) -> bool:
    """May ``actor`` read a deal (or task) assigned to ``manager_id``? Everyone but a manager limited to
    their own deals may; ``None`` (a caller without sign-in: CLI, scripts) reads everything."""
    if actor is None:
        return True
    who = require(actor, Permission.READ_DEALS)
    return not who.own_deals_only or manager_id == who.manager_id


class Reports(Analytics):
    """The read queries behind the manager pages, each in one read-only transaction (analytics inherited)."""

    def __init__(self, context: Context, rulesets: RuleSets, queries: Queries):
        super().__init__(context, rulesets)
        self._queries = queries

    def deal_board(
        self, funnel: str, now: datetime | None = None, *, actor: Actor | str | None = None
    ) -> pd.DataFrame:
        """Every deal of ``funnel``: one row each, with its stage name, manager and open-task count.

        ``actor``: a manager who sees only their own deals gets only those (every read here that takes
        an actor applies the same rule, ``sees``)."""
        import pandas as pd

        now = now or self._context.clock.now()
        rs = self._rulesets.get(funnel)
        with self._context.read_transaction() as s:
            names = repo.manager_names(s)
            deals = [d for d in repo.list_deals(s, funnel) if sees(actor, d.manager_id)]
            open_tasks: dict[int, int] = {}
            high: dict[int, int] = {}
            for task, deal in repo.list_tasks_with_deals(
                s, statuses=["open"], funnel_id=funnel, limit=100_000
            ):
                open_tasks[deal.id] = open_tasks.get(deal.id, 0) + 1
                if task.priority in HIGH_PRIORITIES:
                    high[deal.id] = high.get(deal.id, 0) + 1
            rows = [
                {
                    "id": d.id,
                    "key": d.key,
                    "title": d.title or "",
                    "stage": d.stage,
                    "stage_name": stage_name(rs, d.stage),
                    "closed": d.closed,
                    "manager": names.get(d.manager_id, "") if d.manager_id else "",
                    "amount": d.amount,
                    "phone": d.phone or "",
                    "hours_in_stage": (now - d.stage_entered_at).total_seconds() / 3600,
                    "open_tasks": open_tasks.get(d.id, 0),
                    "high_tasks": high.get(d.id, 0),
                    "updated_at": d.updated_at,
                }
                for d in deals
            ]
        return pd.DataFrame(
            rows,
            columns=[
                "id",
                "key",
                "title",
                "stage",
                "stage_name",
                "closed",
                "manager",
                "amount",
                "phone",
                "hours_in_stage",
                "open_tasks",
                "high_tasks",
                "updated_at",
            ],
        )

    def deal_card(self, deal_id: int, *, actor: Actor | str | None = None) -> DealCard:
        import pandas as pd

        state = self._queries.deal(deal_id)
        if not sees(actor, state.manager_id):
            raise Forbidden(_("deal {key} is assigned to another manager").format(key=state.key))
        rs = self._rulesets.get(state.funnel)
        with self._context.read_transaction() as s:
            names = repo.manager_names(s)
            versions = repo.version_numbers(s)
            row = repo.get_deal(s, deal_id)
            if row is None:
                raise NotFound(f"no deal {deal_id}")
            parent = repo.get_deal(s, row.parent_deal_id) if row.parent_deal_id else None
            events = pd.DataFrame(
                [
                    {
                        "at": e.at,
                        "kind": e.kind,
                        "kind_label": kind_label(e.kind),
                        "actor": e.actor,
                        "what": describe_event(rs, e.kind, e.data or {}),
                    }
                    for e in repo.list_events(s, deal_id)
                ],
                columns=["at", "kind", "kind_label", "actor", "what"],
            )
            tasks = pd.DataFrame(
                [
                    {
                        "id": t.id,
                        "kind": t.kind,
                        "title": task_title(t.title, t.titles),
                        "priority": t.priority,
                        "status": t.status,
                        "status_text": task_status_text(rs, t.status, t.closed_reason),
                        "due_at": t.due_at,
                        "manager": names.get(t.manager_id, "") if t.manager_id else "",
                        "created_at": t.created_at,
                        "done_at": t.done_at,
                    }
                    for t in repo.list_tasks(s, deal_id=deal_id)
                ],
                columns=[
                    "id",
                    "kind",
                    "title",
                    "priority",
                    "status",
                    "status_text",
                    "due_at",
                    "manager",
                    "created_at",
                    "done_at",
                ],
            )
            outbox = repo.list_outbox(s, deal_id=deal_id)
            # The gateway's answer for a message that failed is its action's error.
            errors = {o.id: o.last_error for o, _f in outbox}
            messages = pd.DataFrame(
                [
                    {
                        "created_at": m.created_at,
                        "channel": m.channel,
                        "to": m.to,
                        "text": m.text,
                        "status": m.status,
                        "sent_at": m.sent_at,
                        "provider": m.provider,
                        "gateway_id": m.provider_ref or "",
                        "error": (errors.get(m.outbox_id) or "")
                        if m.status in ("failed", "dead", "sending")
                        else "",
                    }
                    for m in repo.list_messages(s, deal_id)
                ],
                columns=[
                    "created_at",
                    "channel",
                    "to",
                    "text",
                    "status",
                    "sent_at",
                    "provider",
                    "gateway_id",
                    "error",
                ],
            )
            invoices = pd.DataFrame(
                [
                    {"number": i.number, "amount": i.amount, "created_at": i.created_at}
                    for i in repo.list_invoices(s, deal_id)
                ],
                columns=["number", "amount", "created_at"],
            )
            actions = _action_rows(
                [(o, f, row) for o, f in outbox],
                versions,
                names,
                deliveries.messages_for_outbox(s, [o.id for o, _f in outbox]),
                lambda vid: self._rulesets.by_version_id(s, vid),
            )
        allowed = [(t.to, stage_name(rs, t.to)) for t in rs.transitions if t.from_ == state.stage]
        if not rs.transitions:  # a funnel without transitions allows any move
            allowed = [(st.id, label(st.name)) for st in rs.stages if st.id != state.stage]
        return DealCard(
            state=state,
            ruleset=rs,
            stage_name=stage_name(rs, state.stage),
            allowed_moves=allowed,
            events=events,
            tasks=tasks,
            messages=messages,
            invoices=invoices,
            actions=actions,
            parent_key=parent.key if parent else None,
        )

    def task_queue(
        self,
        *,
        manager: str | None = None,
        priorities: list[str] | None = None,
        funnel: str | None = None,
        overdue_only: bool = False,
        status: str = "open",
        now: datetime | None = None,
        actor: Actor | str | None = None,
    ) -> pd.DataFrame:
        """Tasks and notifications waiting for managers; high priority and most overdue first.

        ``manager`` is a manager's name, or ``""`` for items nobody is assigned to.
        """
        import pandas as pd

        now = now or self._context.clock.now()
        with self._context.read_transaction() as s:
            names = repo.manager_names(s)
            pairs = repo.list_tasks_with_deals(
                s, statuses=[status] if status else None, funnel_id=funnel, limit=100_000
            )
            rows = []
            for t, d in pairs:
                if not (sees(actor, d.manager_id) or sees(actor, t.manager_id)):
                    continue
                who = names.get(t.manager_id, "") if t.manager_id else ""
                if manager is not None and who != manager:
                    continue
                if priorities and t.priority not in priorities:
                    continue
                overdue = _overdue(t, now)
                if overdue_only and not overdue:
                    continue
                rows.append(
                    {
                        "id": t.id,
                        "kind": t.kind,
                        "title": task_title(t.title, t.titles),
                        "priority": t.priority,
                        "high": t.priority in HIGH_PRIORITIES,
                        "status": t.status,
                        "due_at": t.due_at,
                        "overdue": overdue,
                        "overdue_hours": (now - t.due_at).total_seconds() / 3600
                        if overdue and t.due_at is not None
                        else 0.0,
                        "manager": who,
                        "deal_id": d.id,
                        "deal_key": d.key,
                        "deal_title": d.title or "",
                        "funnel": d.funnel_id,
                        "stage": d.stage,
                        "created_at": t.created_at,
                    }
                )
        df = pd.DataFrame(
            rows,
            columns=[
                "id",
                "kind",
                "title",
                "priority",
                "high",
                "status",
                "due_at",
                "overdue",
                "overdue_hours",
                "manager",
                "deal_id",
                "deal_key",
                "deal_title",
                "funnel",
                "stage",
                "created_at",
            ],
        )
        if not df.empty:
            df = df.sort_values(
                ["high", "overdue", "overdue_hours", "id"],
                ascending=[False, False, False, True],
                kind="stable",
            ).reset_index(drop=True)
        return df

    def action_log(
        self,
        *,
        statuses: list[str] | None = None,
        funnel: str | None = None,
        limit: int = 500,
        actor: Actor | str | None = None,
    ) -> pd.DataFrame:
        """Everything the engine did or will do, newest first: rule, deal, action, status, error."""
        with self._context.read_transaction() as s:
            rows = [
                r
                for r in repo.list_outbox_log(s, statuses=statuses, funnel_id=funnel, limit=limit)
                # A message to a manager is theirs to see; a firing's action, its deal manager's.
                if sees(actor, r[0].manager_id if r[2] is None or r[1] is None else r[2].manager_id)
            ]
            return _action_rows(
                rows,
                repo.version_numbers(s),
                repo.manager_names(s),
                deliveries.messages_for_outbox(
                    s, [o.id for o, _f, _d in rows if o.kind == "message"]
                ),
                lambda vid: self._rulesets.by_version_id(s, vid),
            )

    def stuck_deals(
        self, funnel: str, threshold_hours: float, now: datetime | None = None
    ) -> pd.DataFrame:
        """Open deals that have sat in their stage longer than ``threshold_hours``, longest first."""
        board = self.deal_board(funnel, now)
        stuck = board[(~board["closed"]) & (board["hours_in_stage"] > threshold_hours)]
        return stuck.sort_values("hours_in_stage", ascending=False).reset_index(drop=True)

    def overdue_by_manager(
        self, funnel: str | None = None, now: datetime | None = None
    ) -> pd.DataFrame:
        """Open tasks past their due time per manager ('(unassigned)' for tasks without one)."""
        import pandas as pd

        queue = self.task_queue(funnel=funnel, overdue_only=True, now=now)
        if queue.empty:
            return pd.DataFrame(columns=["manager", "overdue", "high"])
        queue["manager"] = queue["manager"].replace("", "(unassigned)")
        return (
            queue.groupby("manager", as_index=False)
            .agg(overdue=("id", "count"), high=("high", "sum"))
            .sort_values(["overdue", "manager"], ascending=[False, True])
            .reset_index(drop=True)
        )

    def funnels_by_deals(self) -> list[tuple[str, str]]:
        """(funnel id, name), the funnel with the most deals first: the one a manager most likely wants."""
        funnels = self._rulesets.funnels()
        with self._context.read_transaction() as s:
            counts = repo.deal_counts_by_funnel(s)
        return sorted(funnels, key=lambda f: (-counts.get(f[0], 0), f[1]))

    def fired_occurrences(self, deal_id: int) -> set[tuple[str, str]]:
        """(rule id, occurrence) pairs already fired for a deal: a dry run marks those as repeats."""
        with self._context.read_transaction() as s:
            return repo.fired_occurrences(s, deal_id)

    def managers(self) -> list[str]:
        with self._context.read_transaction() as s:
            return [m.name for m in repo.list_managers(s)]

    def row_counts(self) -> dict[str, int]:
        with self._context.read_transaction() as s:
            return repo.count_rows(s)

"""Read-only reports for the manager pages: deal board, deal card, task queue, action log, analytics.

Every function reads through ``storage.repositories`` and returns plain dataclasses or pandas
DataFrames, so the builder never queries tables and nothing here can write a row. Times stay UTC;
``to_display`` converts them to the display zone (``CONVEYOR_TZ``, default Europe/Kyiv). Reads use
a read-only transaction (no write lock on SQLite), so a page never waits for the engine's writes.
``Reports`` is ``Conveyor.reports``; the rest are pure helpers for the pages. pandas is imported where a
frame is built: it takes about a second, which every ``Conveyor`` (the CLI, the engine) would pay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from engine import clock
from engine.core.context import Context
from engine.core.queries import Queries
from engine.core.rulesets import RuleSets
from engine.document.ruleset import RuleSet, StageKind
from engine.rules.deal import DealState
from engine.rules.registry import with_event
from storage import deliveries
from storage import repositories as repo

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ACTION_STATUSES",
    "HIGH_PRIORITIES",
    "DealCard",
    "Reports",
    "StageVisit",
    "Summary",
    "action_summary",
    "describe_event",
    "display_zone",
    "event_label",
    "event_text",
    "hours_text",
    "reason_text",
    "sample_deal",
    "to_display",
]

HIGH_PRIORITIES = ("high",)  # engine.actions.PRIORITIES: low, normal, high
ACTION_STATUSES = ("pending", "sending", "done", "failed", "dead")


# -- display time ----------------------------------------------------------------------------------
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
    text = f"{d} d {h} h" if d else f"{h} h {m} min" if h else f"{m} min"
    return f"-{text}" if hours < 0 else text


# -- deal board and deal card ---------------------------------------------------------------------
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


def describe_event(rs: RuleSet, kind: str, data: dict[str, Any]) -> str:
    """A deal event as one readable line (stage ids shown by the names the owner gave them)."""
    if kind == "created":
        text = f"created in {_stage_name(rs, data.get('stage', ''))}"
        return text + (f" (from {data['parent']})" if data.get("parent") else "")
    if kind == "stage_moved":
        text = f"{_stage_name(rs, data.get('from', ''))} → {_stage_name(rs, data.get('to', ''))}"
        return text + (f" by rule {data['rule']}" if data.get("rule") else "")
    if kind == "updated":
        parts = [
            f"{k}: {_short(v.get('from')) or '—'} → {_short(v.get('to')) or '—'}"
            for k, v in data.items()
            if isinstance(v, dict)
        ]
        return "; ".join(parts) or "no change"
    if kind == "task_done":
        return f"done: {data.get('title', '')}"
    if kind == "activity":
        return f"{data.get('kind', 'activity')}" + (f": {data['note']}" if data.get("note") else "")
    if (
        kind == "event" or rs.event(kind) is not None
    ):  # "event"; before migration 0003, the event's name
        return event_text(rs, data.get("name", kind), data)
    if kind == "manager_assigned":
        return f"assigned to {data.get('manager', '')}"
    if kind == "invoice_generated":
        return f"invoice {data.get('number', '')} for {data.get('amount', 0):,.2f}"
    if kind == "process_started":
        return f"started {data.get('funnel', '')} as {data.get('deal', '')}"
    return ", ".join(f"{k}: {_short(v)}" for k, v in data.items())


def event_label(rs: RuleSet, name: str) -> str:
    """A declared event as the owner named it ("Client opened the proposal"); its name if undeclared now."""
    ev = rs.event(name)
    return (ev.label.strip() if ev is not None else "") or name


def event_text(rs: RuleSet, name: str, data: dict[str, Any]) -> str:
    """One recorded event: its label, what it carried, and when it happened if reported late."""
    text = event_label(rs, name)
    carried = data.get("data") if isinstance(data.get("data"), dict) else {}
    if carried:
        text += " (" + ", ".join(f"{k}: {_number(v)}" for k, v in carried.items()) + ")"
    if data.get("at"):
        text += f", happened {to_display(_instant(data['at']))}"
    return text


def _number(value: Any) -> str:
    return (
        f"{value:,.2f}"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else _short(value)
    )


def _instant(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


# -- tasks and the action log ----------------------------------------------------------------------
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
]


def _action_rows(
    rows: list[tuple[Any, Any, Any]],
    versions: dict[int, tuple[str, int]],
    names: dict[int, str],
    messages: dict[int, Any] | None = None,
) -> pd.DataFrame:
    import pandas as pd

    out = []
    for o, f, d in rows:
        m = (messages or {}).get(o.id)
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
                "summary": action_summary(o.action, o.result or o.params or {}),
                "status": o.status,
                "attempts": o.attempts,
                "error": o.last_error or "",
                "reason": reason_text(f.values or {}),
                "version": versions.get(f.ruleset_version_id, ("", 0))[1],
                "trigger": f.trigger,
            }
        )
    return pd.DataFrame(out, columns=_ACTION_COLUMNS)


def action_summary(action: str, params: dict[str, Any]) -> str:
    """What an action did (its result) or will do (its params), in a few words."""
    if action == "assign_manager":
        return f"manager {params['manager']}" if params.get("manager") else "assign a manager"
    if action in ("create_task", "notify_manager"):
        text = params.get("title") or params.get("text") or ""
        due = (
            f" (due in {params['due_in_hours']} h)"
            if params.get("due_in_hours") is not None
            else ""
        )
        return f"{text}{due}"
    if action == "move_to_stage":
        return f"move to {params.get('to_stage', '')}" + (
            " (already there)" if params.get("skipped") else ""
        )
    if action == "generate_invoice":
        return f"invoice {params['number']}" if params.get("number") else "generate an invoice"
    if action == "start_process":
        return f"start {params.get('funnel', '')}" + (
            f" → {params['deal']}" if params.get("deal") else ""
        )
    if action in ("send_sms", "send_message", "send_email"):
        to = f" to {params['to']}" if params.get("to") else ""
        channel = params.get("channel") or ("email" if action == "send_email" else "sms")
        text = params.get("subject") or params.get("text", "")
        if isinstance(text, dict):  # a template given per language, not yet rendered
            text = " / ".join(f"{k}: {v}" for k, v in text.items())
        return f"{channel}{to}: {_short(text, 60)}"
    return ", ".join(f"{k}={_short(v)}" for k, v in params.items())


def reason_text(values: dict[str, Any]) -> str:
    """A firing's recorded condition values: 'stage = proposal, hours_in_stage = 48.2'."""
    return ", ".join(f"{k} = {_short(v)}" for k, v in values.items())


# -- analytics -------------------------------------------------------------------------------------
@dataclass
class StageVisit:
    deal_id: int
    stage: str
    entered_at: datetime
    left_at: datetime | None  # None: the deal is still there


@dataclass(frozen=True)
class Summary:
    open_deals: int
    won_deals: int
    lost_deals: int
    open_tasks: int
    overdue_tasks: int
    failed_actions: int
    pending_actions: int


# -- helpers ---------------------------------------------------------------------------------------
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

    def ago(hours: float | None) -> datetime | None:
        return None if hours is None else at - timedelta(hours=hours)

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
        last_activity_at=ago(hours_since_last_activity),
        fields=dict(fields or {}),
    )
    for name, hours in (events or {}).items():
        when = ago(hours)
        if when is not None:
            state.signals = with_event(state.signals, name, when, state.stage_visit)
    return state


def _week_start(local: datetime) -> str:
    return (local.date() - timedelta(days=local.weekday())).isoformat()


def _overdue(task: Any, now: datetime) -> bool:
    # A notification is due the moment it is created; only tasks can run late.
    return (
        task.status == "open"
        and task.kind == "task"
        and task.due_at is not None
        and task.due_at < now
    )


def _stage_name(rs: RuleSet, stage_id: str) -> str:
    st = rs.stage(stage_id)
    return st.name if st else stage_id


def _short(value: Any, width: int = 40) -> str:
    if isinstance(value, float):
        text = f"{value:.1f}" if value != int(value) else str(int(value))
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value) or "(none)"
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


class Reports:
    """The read queries behind the manager pages, each in one read-only transaction."""

    def __init__(self, context: Context, rulesets: RuleSets, queries: Queries):
        self._context = context
        self._rulesets = rulesets
        self._queries = queries

    def deal_board(self, funnel: str, now: datetime | None = None) -> pd.DataFrame:
        """Every deal of ``funnel``: one row each, with its stage name, manager and open-task count."""
        import pandas as pd

        now = now or self._context.clock.now()
        rs = self._rulesets.get(funnel)
        with self._context.read_transaction() as s:
            names = repo.manager_names(s)
            deals = repo.list_deals(s, funnel)
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
                    "stage_name": _stage_name(rs, d.stage),
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

    def deal_card(self, deal_id: int) -> DealCard:
        import pandas as pd

        state = self._queries.deal(deal_id)
        rs = self._rulesets.get(state.funnel)
        with self._context.read_transaction() as s:
            names = repo.manager_names(s)
            versions = repo.version_numbers(s)
            row = repo.get_deal(s, deal_id)
            parent = repo.get_deal(s, row.parent_deal_id) if row.parent_deal_id else None
            events = pd.DataFrame(
                [
                    {
                        "at": e.at,
                        "kind": e.kind,
                        "actor": e.actor,
                        "what": describe_event(rs, e.kind, e.data or {}),
                    }
                    for e in repo.list_events(s, deal_id)
                ],
                columns=["at", "kind", "actor", "what"],
            )
            tasks = pd.DataFrame(
                [
                    {
                        "id": t.id,
                        "kind": t.kind,
                        "title": t.title,
                        "priority": t.priority,
                        "status": t.status,
                        "due_at": t.due_at,
                        "manager": names.get(t.manager_id, ""),
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
            )
        allowed = [(t.to, _stage_name(rs, t.to)) for t in rs.transitions if t.from_ == state.stage]
        if not rs.transitions:  # a funnel without transitions allows any move
            allowed = [(st.id, st.name) for st in rs.stages if st.id != state.stage]
        return DealCard(
            state=state,
            ruleset=rs,
            stage_name=_stage_name(rs, state.stage),
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
                        "title": t.title,
                        "priority": t.priority,
                        "high": t.priority in HIGH_PRIORITIES,
                        "status": t.status,
                        "due_at": t.due_at,
                        "overdue": overdue,
                        "overdue_hours": (now - t.due_at).total_seconds() / 3600
                        if overdue
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
        self, *, statuses: list[str] | None = None, funnel: str | None = None, limit: int = 500
    ) -> pd.DataFrame:
        """Everything the engine did or will do, newest first: rule, deal, action, status, error."""
        with self._context.read_transaction() as s:
            rows = repo.list_outbox_log(s, statuses=statuses, funnel_id=funnel, limit=limit)
            return _action_rows(
                rows,
                repo.version_numbers(s),
                repo.manager_names(s),
                deliveries.messages_for_outbox(
                    s, [o.id for o, _f, _d in rows if o.kind == "message"]
                ),
            )

    def stage_visits(self, funnel: str) -> list[StageVisit]:
        """Every stay of every deal in a stage, rebuilt from its 'created' and 'stage_moved' events."""
        with self._context.read_transaction() as s:
            events = [
                (e.deal_id, e.at, e.kind, dict(e.data or {}))
                for e in repo.list_funnel_events(s, funnel, kinds=["created", "stage_moved"])
            ]
        visits: list[StageVisit] = []
        current: dict[int, StageVisit] = {}
        for deal_id, at, kind, data in events:
            if kind == "created":
                v = StageVisit(deal_id, data.get("stage", ""), at, None)
            else:
                prev = current.get(deal_id)
                if prev is not None:
                    prev.left_at = at
                v = StageVisit(deal_id, data.get("to", ""), at, None)
            visits.append(v)
            current[deal_id] = v
        return visits

    def stage_reach(self, funnel: str) -> pd.DataFrame:
        """How many distinct deals ever entered each stage, in funnel order (the funnel chart)."""
        import pandas as pd

        rs = self._rulesets.get(funnel)
        entered: dict[str, set[int]] = {}
        for v in self.stage_visits(funnel):
            entered.setdefault(v.stage, set()).add(v.deal_id)
        top = max((len(x) for x in entered.values()), default=0)
        rows = [
            {
                "stage": st.id,
                "stage_name": st.name,
                "kind": st.kind.value,
                "deals": len(entered.get(st.id, ())),
                "share": len(entered.get(st.id, ())) / top if top else 0.0,
            }
            for st in rs.stages
        ]
        return pd.DataFrame(rows, columns=["stage", "stage_name", "kind", "deals", "share"])

    def conversion(self, funnel: str) -> pd.DataFrame:
        """Stage-to-stage conversion: distinct deals that moved A → B over distinct deals that entered A."""
        import pandas as pd

        rs = self._rulesets.get(funnel)
        entered: dict[str, set[int]] = {}
        moved: dict[tuple[str, str], set[int]] = {}
        by_deal: dict[int, str] = {}
        for v in self.stage_visits(funnel):
            entered.setdefault(v.stage, set()).add(v.deal_id)
            prev = by_deal.get(v.deal_id)
            if prev is not None:
                moved.setdefault((prev, v.stage), set()).add(v.deal_id)
            by_deal[v.deal_id] = v.stage
        order = {st.id: i for i, st in enumerate(rs.stages)}
        rows = []
        for (a, b), deals in sorted(
            moved.items(), key=lambda kv: (order.get(kv[0][0], 99), order.get(kv[0][1], 99))
        ):
            base = len(entered.get(a, ()))
            rows.append(
                {
                    "from": a,
                    "to": b,
                    "from_name": _stage_name(rs, a),
                    "to_name": _stage_name(rs, b),
                    "transition": f"{_stage_name(rs, a)} → {_stage_name(rs, b)}",
                    "deals": len(deals),
                    "entered_from": base,
                    "rate": len(deals) / base if base else 0.0,
                }
            )
        return pd.DataFrame(
            rows,
            columns=[
                "from",
                "to",
                "from_name",
                "to_name",
                "transition",
                "deals",
                "entered_from",
                "rate",
            ],
        )

    def time_in_stage(self, funnel: str, now: datetime | None = None) -> pd.DataFrame:
        """Average hours a deal stays in each open stage (stays still running count up to ``now``)."""
        import pandas as pd

        now = now or self._context.clock.now()
        rs = self._rulesets.get(funnel)
        hours: dict[str, list[float]] = {}
        finished: dict[str, int] = {}
        for v in self.stage_visits(funnel):
            st = rs.stage(v.stage)
            if st is not None and st.kind is not StageKind.OPEN:
                continue  # won and lost stages are ends, not waits
            end = v.left_at or now
            hours.setdefault(v.stage, []).append((end - v.entered_at).total_seconds() / 3600)
            finished[v.stage] = finished.get(v.stage, 0) + (v.left_at is not None)
        rows = [
            {
                "stage": st.id,
                "stage_name": st.name,
                "visits": len(hours.get(st.id, [])),
                "finished": finished.get(st.id, 0),
                "avg_hours": sum(hours[st.id]) / len(hours[st.id]) if hours.get(st.id) else 0.0,
                "max_hours": max(hours[st.id]) if hours.get(st.id) else 0.0,
            }
            for st in rs.stages
            if st.kind is StageKind.OPEN
        ]
        return pd.DataFrame(
            rows, columns=["stage", "stage_name", "visits", "finished", "avg_hours", "max_hours"]
        )

    def stuck_deals(
        self, funnel: str, threshold_hours: float, now: datetime | None = None
    ) -> pd.DataFrame:
        """Open deals that have sat in their stage longer than ``threshold_hours``, longest first."""
        board = self.deal_board(funnel, now)
        stuck = board[(~board["closed"]) & (board["hours_in_stage"] > threshold_hours)]
        return stuck.sort_values("hours_in_stage", ascending=False).reset_index(drop=True)

    def firings_per_week(self, funnel: str | None = None) -> pd.DataFrame:
        """How many times each rule fired in each ISO week (weeks start on Monday, display zone)."""
        import pandas as pd

        zone = display_zone()
        with self._context.read_transaction() as s:
            rows = [
                {
                    "rule_id": f.rule_id,
                    "rule": f.rule_name or f.rule_id,
                    "funnel": f.funnel_id,
                    "fired_at": f.fired_at,
                }
                for f in repo.list_funnel_firings(s, funnel)
            ]
        df = pd.DataFrame(rows, columns=["rule_id", "rule", "funnel", "fired_at"])
        if df.empty:
            return pd.DataFrame(columns=["week", "rule_id", "rule", "firings"])
        df["week"] = df["fired_at"].map(lambda t: _week_start(t.astimezone(zone)))
        return (
            df.groupby(["week", "rule_id", "rule"], as_index=False)
            .size()
            .rename(columns={"size": "firings"})
            .sort_values(["week", "firings"], ascending=[True, False])
            .reset_index(drop=True)
        )

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

    def summary(self, funnel: str | None = None, now: datetime | None = None) -> Summary:
        now = now or self._context.clock.now()
        # Rule sets are read before the session: the rule-set read opens a write session (BEGIN IMMEDIATE on
        # SQLite), which would wait for a transaction still open on the same in-memory connection.
        kinds: dict[tuple[str, str], StageKind] = {}
        for fid in [f for f, _ in self._rulesets.funnels()] if funnel is None else [funnel]:
            for st in self._rulesets.get(fid).stages:
                kinds[(fid, st.id)] = st.kind
        with self._context.read_transaction() as s:
            stage_counts = repo.deal_stage_counts(s, funnel)
            open_tasks, overdue = repo.open_task_counts(s, now, funnel)
            statuses = repo.outbox_status_counts(s, funnel)
        count = {k: 0 for k in StageKind}
        for fid, stage, n in stage_counts:
            count[kinds.get((fid, stage), StageKind.OPEN)] += n
        return Summary(
            open_deals=count[StageKind.OPEN],
            won_deals=count[StageKind.WON],
            lost_deals=count[StageKind.LOST],
            open_tasks=open_tasks,
            overdue_tasks=overdue,
            failed_actions=statuses.get("failed", 0) + statuses.get("dead", 0),
            pending_actions=statuses.get("pending", 0) + statuses.get("sending", 0),
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

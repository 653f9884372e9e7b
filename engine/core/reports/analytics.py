"""Funnel analytics over the deal history: stage reach, conversion, time in stage, firings per week."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from engine.core.context import Context
from engine.core.reports.text import display_zone, stage_name
from engine.core.rulesets import RuleSets
from engine.document.labels import label
from engine.document.ruleset import StageKind
from storage import repositories as repo

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Analytics", "StageVisit", "Summary"]


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


def _week_start(local: datetime) -> str:
    return (local.date() - timedelta(days=local.weekday())).isoformat()


class Analytics:
    """The analytics page's numbers, each read in one read-only transaction."""

    def __init__(self, context: Context, rulesets: RuleSets):
        self._context = context
        self._rulesets = rulesets

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
                "stage_name": label(st.name),
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
                    "from_name": stage_name(rs, a),
                    "to_name": stage_name(rs, b),
                    "transition": f"{stage_name(rs, a)} → {stage_name(rs, b)}",
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
                "stage_name": label(st.name),
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

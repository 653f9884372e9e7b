"""What every internal action's effect is given, and the helpers two or more of them share.

An effect runs inside the dispatcher's transaction (``s``) on the deal its row names, locked, and
returns the resolved parameters (what actually happened), which the outbox row keeps as ``result``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine.core.evaluation import MAX_CASCADE, Evaluation, moved_reason
from engine.core.queries import Queries
from engine.core.rulesets import RuleSets
from engine.document.template import DEFAULT_LANGUAGE
from engine.outbox.errors import ActionFailed
from engine.rules.working_time import calendar_of
from storage import repositories as repo
from storage.models import Deal, Firing, OutboxAction

__all__ = [
    "Core",
    "Effect",
    "TaskPlace",
    "bounded_chain",
    "due_after",
    "manager_name",
    "message_language",
    "task_place",
]


@dataclass(frozen=True)
class Core:
    """The core services an effect may call, with the dispatcher's session."""

    rulesets: RuleSets
    evaluation: Evaluation
    queries: Queries


#: ``effect(core, s, deal, row, firing, now) -> result``
Effect = Callable[[Core, Session, Deal, OutboxAction, Firing, datetime], dict[str, Any]]


def manager_name(s: Session, deal: Deal) -> str | None:
    return repo.manager_names(s).get(deal.manager_id) if deal.manager_id else None


def bounded_chain(firing: Firing) -> list[str]:
    """The rules that led to this firing; refused (permanently) once longer than ``MAX_CASCADE``.

    Stage moves and started processes are changes that are evaluated again, so both carry the chain:
    a rule that starts its own funnel's process would otherwise create deals without end.
    """
    chain = list(firing.chain or [])
    if len(chain) > MAX_CASCADE:
        loop = " → ".join(chain)
        raise ActionFailed(
            f"cascade of stage moves and started processes stopped after {MAX_CASCADE} steps;"
            f" rules in the loop: {loop}",
            permanent=True,
        )
    return chain


def due_after(
    core: Core,
    s: Session,
    firing: Firing,
    now: datetime,
    *,
    hours: float | None,
    working_hours: float | None,
) -> datetime:
    """``now`` plus ``hours`` calendar hours, or plus ``working_hours`` of the calendar of the version
    the rule fired under (Friday 17:00 + 2 working hours, 09:00–18:00 on weekdays: Monday 10:00)."""
    if working_hours is None:
        return now + timedelta(hours=float(hours or 0))
    # The version the rule fired under declared the calendar (the validator saw to that).
    calendar = calendar_of(core.rulesets.by_version_id(s, firing.ruleset_version_id).calendar)
    if calendar is None:
        raise ActionFailed(
            "due_in_working_hours needs the funnel's calendar, and this version has none",
            permanent=True,
        )
    due = calendar.add_hours(now, float(working_hours))
    if due is None:
        raise ActionFailed(
            f"{working_hours} working hours from now is past year 9998", permanent=True
        )
    return due


def message_language(core: Core, s: Session, deal: Deal) -> str:
    """The language a per-language template is rendered in for ``deal``.

    The deal's own ``language`` field when its funnel declares one (and the deal has it filled),
    else the funnel's ``language``, else English.
    """
    rs, _ = core.rulesets.active(s, deal.funnel_id)
    if rs.field("language") is not None:
        own = (deal.fields or {}).get("language")
        if isinstance(own, str) and own.strip():
            return own.strip()
    return getattr(rs, "language", None) or DEFAULT_LANGUAGE


@dataclass(frozen=True)
class TaskPlace:
    """Where a new task belongs: the stage visit it closes with (None: it outlives stage moves), and
    ``cancelled`` (its ``closed_reason``) when the deal already left that visit before the dispatcher ran."""

    stage: str | None = None
    visit: int | None = None
    cancelled: str | None = None


def task_place(core: Core, s: Session, deal: Deal, row: OutboxAction, firing: Firing) -> TaskPlace:
    """The stage visit a task created by ``row`` belongs to.

    A task belongs to the visit in which its rule fired when the rule is one of that stage's (a
    condition compares ``stage`` with it) and its action does not say ``keep_after_stage_exit``.
    The rule is read from the version that fired it; the stage from the values it fired with.
    """
    rule = core.rulesets.by_version_id(s, firing.ruleset_version_id).rule(firing.rule_id)
    stage = (firing.values or {}).get("stage")
    if rule is None or not isinstance(stage, str) or not rule.scoped_to_stage(stage):
        return TaskPlace()
    spec = rule.actions[row.seq] if 0 <= row.seq < len(rule.actions) else None
    if spec is not None and spec.keep_after_stage_exit:
        return TaskPlace()
    if deal.stage == stage and deal.stage_entered_at <= firing.fired_at:
        return TaskPlace(stage, deal.stage_visit)
    return TaskPlace(stage, None, moved_reason(deal.stage))

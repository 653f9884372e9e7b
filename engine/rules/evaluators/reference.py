"""Pure evaluation: which rules of a rule set fire for one deal at one instant, and why.

Conditions are checked by business-rules itself (``check_conditions_recursively``) on validated rules
only, so firing decisions are business-rules' decisions. Nothing here touches the database: the
same call can be re-run safely (dry runs, the simulator, the equivalence tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from business_rules.engine import check_condition, check_conditions_recursively, do_actions

from engine.document.conditions import leaves, variable_names
from engine.document.ruleset import Rule, RuleSet
from engine.rules.actions import DealActions, PlannedAction
from engine.rules.deal import DealState
from engine.rules.evaluators.base import Decision, due_time, occurrence
from engine.rules.registry import time_variables, working_calendars
from engine.rules.variables import DealVariables, variables_class

__all__ = ["ConditionTrace", "Decision", "RuleTrace", "evaluate", "occurrence", "trace"]


@dataclass
class ConditionTrace:
    """One leaf condition in a dry run: its actual value and whether it held."""

    path: str
    name: str
    operator: str
    value: Any
    actual: Any
    result: bool


@dataclass
class RuleTrace:
    rule: Rule
    fires: bool
    conditions: list[ConditionTrace] = field(default_factory=list)
    actions: list[PlannedAction] = field(default_factory=list)


def _variables(ruleset: RuleSet, deal: DealState, now: datetime) -> DealVariables:
    return variables_class(ruleset)(deal, now)


def read_values(variables: DealVariables, names: list[str]) -> dict[str, Any]:
    return {name: getattr(variables, name)() for name in names}


def evaluate(
    ruleset: RuleSet, deal: DealState, now: datetime, skip: set[tuple[str, str]] | None = None
) -> list[Decision]:
    """Decisions of every enabled rule whose conditions hold; ``skip`` holds (rule, occurrence) already fired."""
    variables = _variables(ruleset, deal, now)
    anchors, calendars = time_variables(ruleset), working_calendars(ruleset)
    decisions = []
    for rule in ruleset.rules:
        if not rule.enabled:
            continue
        occ = occurrence(rule, deal)
        if skip and (rule.id, occ) in skip:
            continue
        bare = rule.business_rule()
        if not check_conditions_recursively(bare["conditions"], variables):
            continue
        planner = DealActions()
        do_actions(bare["actions"], planner)
        decisions.append(
            Decision(
                rule=rule,
                occurrence=occ,
                values=read_values(variables, variable_names(rule.conditions)),
                actions=planner.planned,
                due_at=due_time(rule.conditions, deal, anchors, calendars),
            )
        )
    return decisions


def trace(ruleset: RuleSet, deal: DealState, now: datetime) -> list[RuleTrace]:
    """Every rule with each leaf condition's actual value: the dry run's "why"."""
    variables = _variables(ruleset, deal, now)
    out = []
    for rule in ruleset.rules:
        conditions = [
            ConditionTrace(
                path=path,
                name=leaf.name,
                operator=leaf.operator,
                value=leaf.value,
                actual=getattr(variables, leaf.name)(),
                result=bool(check_condition(leaf.model_dump(), variables)),
            )
            for path, leaf in leaves(rule.conditions)
        ]
        bare = rule.business_rule()
        fires = rule.enabled and bool(check_conditions_recursively(bare["conditions"], variables))
        planner = DealActions()
        if fires:
            do_actions(bare["actions"], planner)
        out.append(
            RuleTrace(rule=rule, fires=fires, conditions=conditions, actions=planner.planned)
        )
    return out

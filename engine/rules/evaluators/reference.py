"""Pure evaluation: which rules of a rule set fire for one deal at one instant, and why.

Conditions are checked by business-rules itself (``check_conditions_recursively``) on validated rules
only, so firing decisions are business-rules' decisions. Nothing here touches the database: the
same call can be re-run safely (dry runs, the simulator, the equivalence tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from business_rules.engine import check_conditions_recursively, do_actions

from engine.document.ruleset import RepeatPolicy, Rule, RuleSet
from engine.rules.actions import DealActions, PlannedAction
from engine.rules.deal import DealState
from engine.rules.variables import TIME_VARIABLES, DealVariables, variables_class


@dataclass
class Decision:
    """A rule whose conditions hold for a deal: what it would do, and the values that made it so."""

    rule: Rule
    occurrence: str
    values: dict[str, Any]
    actions: list[PlannedAction]
    due_at: datetime | None = None


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


def occurrence(rule: Rule, deal: DealState) -> str:
    """The occurrence key under which ``rule`` may fire once for ``deal`` (the repeat policy)."""
    if rule.repeat is RepeatPolicy.ONCE_PER_DEAL:
        return "deal"
    if rule.repeat is RepeatPolicy.AFTER_EACH_ACTIVITY:
        return f"visit:{deal.stage_visit}/activity:{deal.activity_seq}"
    return f"visit:{deal.stage_visit}"


def condition_names(conditions: dict[str, Any]) -> list[str]:
    """Variable names a condition tree reads, in first-use order."""
    names: list[str] = []
    stack = [conditions]
    while stack:
        node = stack.pop()
        for key in ("all", "any"):
            if key in node:
                stack.extend(reversed(node[key]))
                break
        else:
            if node["name"] not in names:
                names.append(node["name"])
    return names


def due_time(conditions: dict[str, Any], deal: DealState) -> datetime | None:
    """When the time part of a condition tree became (or becomes) true for ``deal``.

    ``hours_in_stage >= 24`` is due at stage entry + 24 h; ``all`` takes the latest of its parts,
    ``any`` the earliest. None when the tree has no lower bound on a time variable.
    """
    for key, pick in (("all", max), ("any", min)):
        if key in conditions:
            parts = [d for d in (due_time(c, deal) for c in conditions[key]) if d is not None]
            return pick(parts) if parts else None
    name, op = conditions["name"], conditions["operator"]
    if name in TIME_VARIABLES and op in ("greater_than", "greater_than_or_equal_to", "equal_to"):
        anchor = TIME_VARIABLES[name](deal)
        if anchor is not None:
            return anchor + timedelta(hours=float(conditions["value"]))
    return None


def _variables(ruleset: RuleSet, deal: DealState, now: datetime) -> DealVariables:
    return variables_class(ruleset)(deal, now)


def read_values(variables: DealVariables, names: list[str]) -> dict[str, Any]:
    return {name: getattr(variables, name)() for name in names}


def evaluate(ruleset: RuleSet, deal: DealState, now: datetime,
             skip: set[tuple[str, str]] | None = None) -> list[Decision]:
    """Decisions of every enabled rule whose conditions hold; ``skip`` holds (rule, occurrence) already fired."""
    variables = _variables(ruleset, deal, now)
    decisions = []
    for rule in ruleset.rules:
        if not rule.enabled:
            continue
        occ = occurrence(rule, deal)
        if skip and (rule.id, occ) in skip:
            continue
        if not check_conditions_recursively(rule.conditions, variables):
            continue
        planner = DealActions()
        do_actions(rule.business_rule()["actions"], planner)
        decisions.append(Decision(rule=rule, occurrence=occ,
                                  values=read_values(variables, condition_names(rule.conditions)),
                                  actions=planner.planned, due_at=due_time(rule.conditions, deal)))
    return decisions


def trace(ruleset: RuleSet, deal: DealState, now: datetime) -> list[RuleTrace]:
    """Every rule with each leaf condition's actual value: the dry run's "why"."""
    from business_rules.engine import check_condition

    variables = _variables(ruleset, deal, now)

    def walk(node: dict[str, Any], path: str, leaves: list[ConditionTrace]) -> None:
        for key in ("all", "any"):
            if key in node:
                for i, child in enumerate(node[key]):
                    walk(child, f"{path}.{key}[{i}]", leaves)
                return
        actual = getattr(variables, node["name"])()
        leaves.append(ConditionTrace(path=path, name=node["name"], operator=node["operator"],
                                     value=node.get("value"), actual=actual,
                                     result=bool(check_condition(node, variables))))

    out = []
    for rule in ruleset.rules:
        leaves: list[ConditionTrace] = []
        walk(rule.conditions, "conditions", leaves)
        fires = rule.enabled and bool(check_conditions_recursively(rule.conditions, variables))
        planner = DealActions()
        if fires:
            do_actions(rule.business_rule()["actions"], planner)
        out.append(RuleTrace(rule=rule, fires=fires, conditions=leaves, actions=planner.planned))
    return out

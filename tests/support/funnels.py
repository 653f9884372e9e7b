"""Small rule-set documents built in a line: a funnel of two stages and rules that fire on a stage."""

from __future__ import annotations

from typing import Any


def rule(rule_id: str, stage: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": rule_id.replace("_", " "),
        "conditions": {"all": [{"name": "stage", "operator": "equal_to", "value": stage}]},
        "actions": actions,
    }


def funnel(
    funnel_id: str, rules: list[dict[str, Any]], stages: tuple[str, ...] = ("start", "next")
) -> dict[str, Any]:
    return {
        "format": "conveyor.ruleset/1",
        "funnel": funnel_id,
        "name": funnel_id.title(),
        "fields": [{"name": "score", "type": "numeric"}],
        "stages": [{"id": s, "name": s.title()} for s in stages],
        "initial_stage": stages[0],
        "rules": rules,
    }

"""What every evaluator shares: the ``Decision`` it returns, the repeat policy's occurrence key, due times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from engine.document.conditions import Condition, Group, Visitor
from engine.document.ruleset import RepeatPolicy, Rule
from engine.rules.actions import PlannedAction
from engine.rules.registry import TIME_VARIABLES
from engine.rules.working_time import WorkingCalendar

__all__ = ["Decision", "Evaluator", "due_time", "occurrence"]


@dataclass
class Decision:
    """A rule whose conditions hold for a deal: what it would do, and the values that made it so."""

    rule: Rule
    occurrence: str
    values: dict[str, Any]
    actions: list[PlannedAction]
    due_at: datetime | None = None


class Evaluator(Protocol):
    """One rule set's decisions for one deal at one instant (see the package docstring)."""

    def evaluate(
        self, deal: Any, now: datetime, skip: set[tuple[str, str]] | None = None
    ) -> list[Decision]: ...


def occurrence(rule: Rule, deal: Any) -> str:
    """The occurrence key under which ``rule`` may fire once for ``deal`` (the repeat policy)."""
    if rule.repeat is RepeatPolicy.ONCE_PER_DEAL:
        return "deal"
    if rule.repeat is RepeatPolicy.AFTER_EACH_ACTIVITY:
        return f"visit:{deal.stage_visit}/activity:{deal.activity_seq}"
    return f"visit:{deal.stage_visit}"


#: Operators under which a leaf on a growing time variable goes from false to true as time passes.
RISING_OPS = ("equal_to", "greater_than", "greater_than_or_equal_to")


Anchors = dict[str, Callable[[Any], "datetime | None"]]


class _DueTime(Visitor["datetime | None"]):
    def __init__(self, deal: Any, anchors: Anchors, calendars: dict[str, WorkingCalendar]):
        self.deal, self.anchors, self.calendars = deal, anchors, calendars

    def all_(self, node: Group, parts: list[datetime | None], path: str) -> datetime | None:
        found = [d for d in parts if d is not None]
        return max(found) if found else None

    def any_(self, node: Group, parts: list[datetime | None], path: str) -> datetime | None:
        found = [d for d in parts if d is not None]
        return min(found) if found else None

    def leaf(self, node: Condition, path: str) -> datetime | None:
        if node.name in self.anchors and node.operator in RISING_OPS:
            anchor = self.anchors[node.name](self.deal)
            calendar = self.calendars.get(node.name)
            if anchor is not None and calendar is not None:
                return calendar.add_hours(anchor, max(float(node.value), 0.0))
            if anchor is not None:
                return anchor + timedelta(hours=float(node.value))
        return None


def due_time(
    conditions: Any,
    deal: Any,
    anchors: Anchors | None = None,
    calendars: dict[str, WorkingCalendar] | None = None,
) -> datetime | None:
    """When the time part of a condition tree became (or becomes) true for ``deal``.

    ``hours_in_stage >= 24`` is due at stage entry + 24 h; ``all`` takes the latest of its parts,
    ``any`` the earliest. None when the tree has no lower bound on a time variable. ``anchors``: the
    rule set's time variables (``registry.time_variables``; default: the built-in ones);
    ``calendars``: those counted in working time (``registry.working_calendars``), whose hours are
    added in working time (``working_hours_in_stage >= 8`` from Friday 16:00 is Monday 15:00).
    """
    return _DueTime(deal, TIME_VARIABLES if anchors is None else anchors, calendars or {}).visit(
        conditions
    )

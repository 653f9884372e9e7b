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

__all__ = ["Decision", "DueTime", "Evaluator", "compile_due_time", "due_time", "occurrence"]


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


#: A condition tree's ``due_time`` for one deal, compiled (``compile_due_time``).
DueTime = Callable[[Any], "datetime | None"]


def _never(deal: Any) -> datetime | None:
    return None


def _due_leaf(node: Condition, anchors: Anchors, calendars: dict[str, WorkingCalendar]) -> DueTime:
    read = anchors[node.name]
    calendar = calendars.get(node.name)
    value = node.value
    if calendar is not None:
        try:
            hours = max(float(value), 0.0)
        except (TypeError, ValueError, OverflowError):
            hours = None
        if hours is not None:

            def working(deal: Any) -> datetime | None:
                anchor = read(deal)
                return None if anchor is None else calendar.add_hours(anchor, hours)

            return working
    else:
        try:
            delta: timedelta | None = timedelta(hours=float(value))
        except (TypeError, ValueError, OverflowError):
            delta = None
        if delta is not None:

            def elapsed(deal: Any) -> datetime | None:
                anchor = read(deal)
                return None if anchor is None else anchor + delta

            return elapsed
    # A value that does not convert: fail (or not) per deal exactly where the walk would.
    return lambda deal: _DueTime(deal, anchors, calendars).leaf(node, "")


class _DueCompiler(Visitor["DueTime | None"]):
    """``due_time`` as closures; None for a subtree that is never due (no rising time leaf)."""

    def __init__(self, anchors: Anchors, calendars: dict[str, WorkingCalendar]):
        self.anchors, self.calendars = anchors, calendars

    def all_(self, node: Group, parts: list[DueTime | None], path: str) -> DueTime | None:
        return _fold(max, [p for p in parts if p is not None])

    def any_(self, node: Group, parts: list[DueTime | None], path: str) -> DueTime | None:
        return _fold(min, [p for p in parts if p is not None])

    def leaf(self, node: Condition, path: str) -> DueTime | None:
        if node.name in self.anchors and node.operator in RISING_OPS:
            return _due_leaf(node, self.anchors, self.calendars)
        return None  # the walk gives None for it whatever the deal


def _fold(pick: Callable[[list[datetime]], datetime], parts: list[DueTime]) -> DueTime | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]

    def fold(deal: Any) -> datetime | None:
        # Every part is read, in order, as the walk reads every leaf.
        found = [d for d in (p(deal) for p in parts) if d is not None]
        return pick(found) if found else None

    return fold


def compile_due_time(
    conditions: Any,
    anchors: Anchors | None = None,
    calendars: dict[str, WorkingCalendar] | None = None,
) -> DueTime:
    """``deal -> due_time(conditions, deal, anchors, calendars)``, the tree walked once, not per deal.

    Subtrees without a rising leaf on a time variable are dropped (the walk gives them None), each
    leaf's hours are converted once.
    """
    found = _DueCompiler(TIME_VARIABLES if anchors is None else anchors, calendars or {}).visit(
        conditions
    )
    return _never if found is None else found

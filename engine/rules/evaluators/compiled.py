"""Compiled evaluation: a validated rule set turned once into Python closures with business-rules' semantics.

``compile_ruleset`` (cached per rule-set fingerprint) gives a ``CompiledRuleSet`` whose decisions are
the same as ``engine.rules.evaluators.reference.evaluate`` (the business-rules reference path) at a fraction of the cost.
Numeric leaves decide with a float test and fall back to business-rules' exact Decimal arithmetic in
the narrow band where the float could be wrong (within 1e-12 of an epsilon boundary).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from business_rules.engine import do_actions

from engine.document.conditions import Condition, Group, Visitor, variable_names
from engine.document.ruleset import Rule, RuleSet
from engine.rules.actions import DealActions, PlannedAction
from engine.rules.evaluators.base import (
    RISING_OPS,
    Decision,
    DueTime,
    compile_due_time,
    occurrence,
)
from engine.rules.evaluators.numeric import BOUNDS, EXACT_INT, FLOAT_EPSILON, MARGIN, exact_numeric
from engine.rules.registry import time_variables, variables_for, working_calendars
from engine.rules.variables import compiled_regex
from engine.rules.working_time import WorkingCalendar

Values = dict[str, Any]
Test = Callable[[Values], bool]


def numeric_test(op: str, threshold: float | int) -> Callable[[float], bool]:
    """``x -> business-rules' NumericType(x).<op>(threshold)``, float-fast away from the boundaries."""
    if op not in BOUNDS:
        raise ValueError(f"'{op}' is not a numeric operator")
    if isinstance(threshold, int) and abs(threshold) > EXACT_INT:
        return lambda x: exact_numeric(op, x, threshold)
    c = float(threshold)
    lo, lo_inc, hi, hi_inc = BOUNDS[op]

    def exact(x: float) -> bool:
        return exact_numeric(op, x, threshold)

    if hi is None:
        assert lo is not None  # BOUNDS gives every operator at least one bound
        lo_sure, lo_unsure = lo + MARGIN, lo - MARGIN

        def above(x: float) -> bool:
            d = x - c
            if d > lo_sure:
                return True
            if d < lo_unsure:
                return False
            return exact(x)

        return above
    if lo is None:
        hi_sure, hi_unsure = hi - MARGIN, hi + MARGIN

        def below(x: float) -> bool:
            d = x - c
            if d < hi_sure:
                return True
            if d > hi_unsure:
                return False
            return exact(x)

        return below

    def between(x: float) -> bool:
        d = x - c
        if lo + MARGIN < d < hi - MARGIN:
            return True
        if d < lo - MARGIN or d > hi + MARGIN:
            return False
        return exact(x)

    return between


def string_test(op: str, value: Any) -> Callable[[str], bool]:
    """``x -> SafeStringType(x).<op>(value)`` (the argument is cast like business-rules: ``value or ""``)."""
    other = value or ""
    if op == "equal_to":
        return lambda x: x == other
    if op == "equal_to_case_insensitive":
        low = other.lower()
        return lambda x: x.lower() == low
    if op == "starts_with":
        return lambda x: x.startswith(other)
    if op == "ends_with":
        return lambda x: x.endswith(other)
    if op == "contains":
        return lambda x: other in x
    if op == "matches_regex":
        rx = compiled_regex(other)
        return lambda x: rx.search(x) is not None
    if op == "non_empty":
        return bool
    raise ValueError(f"'{op}' is not a string operator")


def _same_option(val: Any, other: Any) -> bool:
    if isinstance(val, str) and isinstance(other, str):
        return val.lower() == other.lower()
    return bool(val == other)


def select_test(op: str, value: Any) -> Callable[[list[Any]], bool]:
    """``x -> SelectType(x).<op>(value)``: case-insensitive membership, argument not cast."""
    if op == "contains":
        return lambda xs: any(_same_option(v, value) for v in xs)
    if op == "does_not_contain":
        return lambda xs: not any(_same_option(v, value) for v in xs)
    raise ValueError(f"'{op}' is not a select operator")


def boolean_test(op: str) -> Callable[[bool], bool]:
    if op == "is_true":
        return lambda x: x
    if op == "is_false":
        return lambda x: not x
    raise ValueError(f"'{op}' is not a boolean operator")


# -- condition trees --------------------------------------------------------------------------------
def _group(kind: str, parts: list[Test]) -> Test:
    if len(parts) == 1:
        return parts[0]
    if kind == "all":
        if len(parts) == 2:
            a, b = parts
            return lambda v: a(v) and b(v)

        def all_(v: Values) -> bool:
            for p in parts:
                if not p(v):
                    return False
            return True

        return all_
    if len(parts) == 2:
        a, b = parts
        return lambda v: a(v) or b(v)

    def any_(v: Values) -> bool:
        for p in parts:
            if p(v):
                return True
        return False

    return any_


def leaf_test(kind: str, op: str, value: Any) -> Callable[[Any], bool]:
    """The test of one leaf on an already-read variable value of ``kind``."""
    if kind == "numeric":
        return numeric_test(op, value)
    if kind == "string":
        return string_test(op, value)
    if kind == "select":
        return select_test(op, value)
    if kind == "boolean":
        return boolean_test(op)
    raise ValueError(f"unknown variable kind '{kind}'")


@dataclass(frozen=True)
class TimeLeaf:
    """A leaf on an "hours since" variable that can turn true as time passes (rising operator)."""

    name: str
    operator: str
    value: float | int
    #: Monotone (false, then true) test whose first true instant is when the leaf can turn true;
    #: for ``equal_to`` that is its lower edge (``greater_than_or_equal_to``).
    rising: Callable[[float], bool]
    #: Float estimate of that edge in hours, to seed the exact search.
    edge_hours: float
    #: The calendar whose working hours the variable counts (None: calendar hours).
    calendar: WorkingCalendar | None = None


class _Compiler(Visitor[Test]):
    """A condition tree as a closure over a values dict.

    ``optimistic``: rising time leaves read ``^name`` (anchored) as true. The optimistic tree
    over-approximates "can this become true with time alone": all/any are monotone, rising leaves
    only turn on, every other leaf keeps (or loses) its current value. The exact tree collects its
    rising leaves in ``time_leaves``.
    """

    def __init__(
        self,
        kinds: dict[str, str],
        time_names: Any,
        optimistic: bool,
        calendars: dict[str, WorkingCalendar] | None = None,
    ):
        self.kinds, self.time_names, self.optimistic = kinds, time_names, optimistic
        self.calendars = calendars or {}
        self.time_leaves: list[TimeLeaf] = []

    def all_(self, node: Group, parts: list[Test], path: str) -> Test:
        return _group("all", parts)

    def any_(self, node: Group, parts: list[Test], path: str) -> Test:
        return _group("any", parts)

    def leaf(self, node: Condition, path: str) -> Test:
        name, op, value = node.name, node.operator, node.value
        test = leaf_test(self.kinds[name], op, value)
        rising = name in self.time_names and op in RISING_OPS
        if rising and not self.optimistic:
            mono = test if op != "equal_to" else numeric_test("greater_than_or_equal_to", value)
            edge = float(value) + (FLOAT_EPSILON if op == "greater_than" else -FLOAT_EPSILON)
            self.time_leaves.append(TimeLeaf(name, op, value, mono, edge, self.calendars.get(name)))
        if rising and self.optimistic:
            anchored = "^" + name
            return lambda v: v[anchored] or test(v[name])
        # The commonest leaves read and compare in one closure (``stage equal_to …`` opens nearly
        # every rule): one Python call per leaf instead of two, the same test as ``leaf_test``'s.
        kind = self.kinds[name]
        if kind == "string" and op == "equal_to":
            other = value or ""
            return lambda v: v[name] == other
        if kind == "boolean" and op == "is_true":
            return lambda v: v[name]
        if kind == "boolean" and op == "is_false":
            return lambda v: not v[name]
        return lambda v: test(v[name])


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    test: Test
    optimistic: Test
    names: tuple[str, ...]
    actions: tuple[PlannedAction, ...]
    time_leaves: tuple[TimeLeaf, ...]
    #: ``due_time`` of the conditions for a deal, compiled (``base.compile_due_time``).
    due: DueTime


class _LazyValues(dict[str, Any]):
    """Variable values computed on first access (``dict`` so closures index it at C speed)."""

    __slots__ = ("deal", "now", "getters")

    def __init__(
        self, deal: Any, now: datetime, getters: dict[str, Callable[[Any, datetime], Any]]
    ):
        super().__init__()
        self.deal, self.now, self.getters = deal, now, getters

    def __missing__(self, name: str) -> Any:
        value = self[name] = self.getters[name](self.deal, self.now)
        return value


class CompiledRuleSet:
    """One rule set's enabled rules as closures; evaluate deals (``DealState`` or ORM ``Deal``) with it."""

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        registry = variables_for(ruleset)
        kinds = {name: var.kind.value for name, var in registry.items()}
        getters = {name: var.read for name, var in registry.items()}
        self.kinds = kinds
        #: Each time variable's anchor reader: due times and ``next_due`` count from them.
        self.anchors = time_variables(ruleset)
        #: The working-time variables and their calendar (due times add working hours).
        self.calendars = working_calendars(ruleset)
        self.rules: list[CompiledRule] = []
        used: list[str] = []
        for rule in ruleset.rules:
            if not rule.enabled:
                continue
            exact = _Compiler(kinds, self.anchors, optimistic=False, calendars=self.calendars)
            test = exact.visit(rule.conditions)
            optimistic = _Compiler(kinds, self.anchors, optimistic=True).visit(rule.conditions)
            planner = DealActions()
            do_actions(rule.business_rule()["actions"], planner)
            names = tuple(variable_names(rule.conditions))
            used += [n for n in names if n not in used]
            self.rules.append(
                CompiledRule(
                    rule,
                    test,
                    optimistic,
                    names,
                    tuple(planner.planned),
                    tuple(exact.time_leaves),
                    compile_due_time(rule.conditions, self.anchors, self.calendars),
                )
            )
        self.getters = [(n, getters[n]) for n in used]
        self._getter_of = dict(self.getters)
        self.time_names = [n for n in used if n in self.anchors]

    def values(self, deal: Any, now: datetime) -> Values:
        """The variables the rules read, as business-rules' variables would return them.

        Read lazily, once each: like business-rules, a rule that fails on ``stage`` never reads the
        clock-based variables behind it.
        """
        return _LazyValues(deal, now, self._getter_of)

    def matching(self, deal: Any, now: datetime) -> list[CompiledRule]:
        """Enabled rules whose conditions hold (no repeat policy applied)."""
        v = self.values(deal, now)
        return [r for r in self.rules if r.test(v)]

    def evaluate(
        self,
        deal: Any,
        now: datetime,
        skip: set[tuple[str, str]] | None = None,
        values: Values | None = None,
    ) -> list[Decision]:
        """Same decisions as ``engine.rules.evaluators.reference.evaluate``; ``skip`` holds (rule, occurrence) already fired.

        ``values``: ``self.values(deal, now)`` if the caller already read them.
        """
        v = self.values(deal, now) if values is None else values
        out = []
        keys: dict[Any, str] = {}  # the deal's occurrence key per repeat policy, built once each
        for r in self.rules:
            occ = keys.get(r.rule.repeat)
            if occ is None:
                occ = keys[r.rule.repeat] = occurrence(r.rule, deal)
            if skip and (r.rule.id, occ) in skip:
                continue
            if not r.test(v):
                continue
            out.append(
                Decision(
                    rule=r.rule,
                    occurrence=occ,
                    values={n: v[n] for n in r.names},
                    actions=[PlannedAction(a.name, dict(a.params)) for a in r.actions],
                    due_at=r.due(deal),
                )
            )
        return out

    def next_due(
        self,
        deal: Any,
        now: datetime,
        fired: set[tuple[str, str]] | None = None,
        values: Values | None = None,
    ) -> datetime | None:
        """The earliest instant after ``now`` at which a not-yet-fired rule may turn true with time alone.

        Only rising leaves on anchored time variables can turn a false rule true (all/any have no
        negation), so the candidates are the first microseconds at which such a leaf turns true.
        Between that instant and now nothing can fire without a change to the deal.
        """
        v = self.values(deal, now) if values is None else values
        anchors = {name: self.anchors[name](deal) for name in self.time_names}
        for name, anchor in anchors.items():
            v["^" + name] = anchor is not None
        best: datetime | None = None
        keys: dict[Any, str] = {}
        for r in self.rules:
            if not r.time_leaves:
                continue
            if fired:
                occ = keys.get(r.rule.repeat)
                if occ is None:
                    occ = keys[r.rule.repeat] = occurrence(r.rule, deal)
                if (r.rule.id, occ) in fired:
                    continue
            if not r.optimistic(v):
                continue  # cannot turn true without a change to the deal
            for leaf in r.time_leaves:
                anchor = anchors.get(leaf.name)
                if anchor is None or leaf.rising(v[leaf.name]):
                    continue
                at = (
                    first_true_instant(leaf.rising, anchor, now, leaf.edge_hours)
                    if leaf.calendar is None
                    else first_true_working_instant(
                        leaf.rising, leaf.calendar, anchor, now, leaf.edge_hours
                    )
                )
                if at is not None and (best is None or at < best):
                    best = at
        return best


_US_PER_HOUR = 3_600_000_000


def _hours(us: int) -> float:
    # timedelta(microseconds=us).total_seconds() / 3600.0, without building a timedelta.
    return us / 10**6 / 3600.0


def first_true_instant(
    test: Callable[[float], bool], anchor: datetime, now: datetime, edge_hours: float | None = None
) -> datetime | None:
    """The first whole microsecond after ``now`` at which ``test(hours since anchor)`` holds.

    ``test`` must be monotone (false, then true) in the hours; None when that instant is past the
    largest datetime. Found from the float estimate, then corrected by exact tests.
    """
    start = (now - anchor) // timedelta(microseconds=1) + 1
    limit = (datetime.max.replace(tzinfo=anchor.tzinfo) - anchor) // timedelta(microseconds=1)
    found = _first_true_offset(test, start, limit, edge_hours)
    return None if found is None else anchor + timedelta(microseconds=found)


def first_true_working_instant(
    test: Callable[[float], bool],
    calendar: WorkingCalendar,
    anchor: datetime,
    now: datetime,
    edge_hours: float | None = None,
) -> datetime | None:
    """The first whole microsecond after ``now`` at which ``test(working hours since anchor)`` holds.

    Working time advances by whole microseconds inside working intervals only, so the search runs
    over *worked* microseconds (exactly as ``first_true_instant`` over elapsed ones) and the answer
    is the instant that much work is done: there the variable reads exactly that value, and before
    it one microsecond less. An anchor still ahead of ``now`` (a negative reading) is searched over
    real instants up to the anchor, where the reading is 0.
    """
    us = timedelta(microseconds=1)
    start = calendar.worked_us(anchor, now) + 1
    if start <= 0:
        if test(0.0):

            def at(offset: int) -> bool:
                return test(calendar.hours(anchor, now + offset * us))

            ahead = (anchor - now) // us
            lo, hi = 0, ahead  # false at now, true at the anchor
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if at(mid):
                    hi = mid
                else:
                    lo = mid
            return now + hi * us
        start = 1
    limit = (datetime.max.replace(tzinfo=anchor.tzinfo) - anchor) // us  # worked ≤ elapsed
    found = _first_true_offset(test, start, limit, edge_hours)
    return None if found is None else calendar.add_us(anchor, found)


def _first_true_offset(
    test: Callable[[float], bool], start: int, limit: int, edge_hours: float | None
) -> int | None:
    """The least microsecount ``m`` in ``[start, limit]`` with ``test(hours of m)`` (monotone test)."""
    if start > limit or not test(_hours(limit)):
        return None
    if test(_hours(start)):
        return start
    # Invariant: test false at lo, true at hi. Seed hi/lo near the estimate, then bisect.
    lo, hi = start, limit
    if edge_hours is not None and abs(edge_hours) < 1e12:
        guess = min(max(int(edge_hours * _US_PER_HOUR), start), limit)
        for step in (1, 8, 1024):
            a, b = max(lo, guess - step), min(hi, guess + step)
            if not test(_hours(a)) and test(_hours(b)):
                lo, hi = a, b
                break
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if test(_hours(mid)):
            hi = mid
        else:
            lo = mid
    return hi


_cache: dict[int, CompiledRuleSet] = {}


def compile_ruleset(ruleset: RuleSet) -> CompiledRuleSet:
    """The compiled form of a validated rule set, built once per rule-set object (versions are immutable)."""
    found = _cache.get(id(ruleset))
    if found is not None and found.ruleset is ruleset:
        return found
    compiled = CompiledRuleSet(ruleset)
    if len(_cache) > 256:
        _cache.clear()
    _cache[id(ruleset)] = compiled
    return compiled

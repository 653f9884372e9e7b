"""Vectorised bulk evaluation: every rule of a rule set over a pandas DataFrame of deals, as boolean masks.

Used today by the benchmark (``conveyor bench``) and the equivalence tests only; ticks and changes
use ``engine.rules.evaluators.compiled``. It is the bulk path for future whole-funnel questions ("how many deals would
this rule hit", dry-running a new version over all open deals): one pass of numpy operations per
distinct leaf instead of one business-rules call per deal. Results are business-rules' decisions
exactly: numeric leaves use the same float-then-Decimal test as ``engine.rules.evaluators.compiled``; text and select
leaves run the scalar operator once per distinct value (categorical codes) and broadcast it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from engine.document.conditions import Condition, Group, Visitor
from engine.document.ruleset import FieldType, RuleSet
from engine.rules.evaluators.base import RISING_OPS
from engine.rules.evaluators.compiled import CompiledRuleSet, compile_ruleset, leaf_test
from engine.rules.evaluators.numeric import BOUNDS, EXACT_INT, MARGIN, exact_numeric
from engine.rules.registry import (
    Attribute,
    CustomField,
    EventInVisit,
    Present,
    Since,
    SinceEvent,
    event_at,
    field_value,
    variables_for,
)
from engine.rules.working_time import WorkingCalendar

#: Timestamp columns of a deals frame (``datetime64[us, UTC]``, NaT for "not yet").
TIMESTAMP_COLUMNS = ("created_at", "stage_entered_at", "last_activity_at")
#: Every deal attribute a registry source names is a column (tests/core/test_vectorize.py checks it).
FRAME_COLUMNS = ("stage", "stage_visit", "manager_id", "amount", *TIMESTAMP_COLUMNS)


def event_at_column(name: str) -> str:
    """The frame column of a declared event's latest instant (``@``: never in a field name)."""
    return f"{name}@at"


def event_visit_column(name: str) -> str:
    """The frame column of the stage visit a declared event was last recorded in (0: never)."""
    return f"{name}@visit"


def deals_frame(deals: Iterable[Any], ruleset: RuleSet) -> pd.DataFrame:
    """A deals frame from ``DealState`` / ORM ``Deal`` objects: built-in columns, one per custom field,
    two per declared event (``event_at_column``, ``event_visit_column``)."""
    deals = list(deals)
    count = len(deals)
    names = [f.name for f in ruleset.fields]
    events = [e.name for e in ruleset.events]
    stamps = [*TIMESTAMP_COLUMNS, *(event_at_column(e) for e in events)]
    # Column by column (an import builds frames of thousands of new deals): no dict per row.
    data: dict[str, list[Any]] = {
        "stage": [d.stage for d in deals],
        "stage_visit": [d.stage_visit for d in deals],
        "manager_id": [d.manager_id for d in deals],
        "amount": [np.nan if d.amount is None else d.amount for d in deals],
    }
    for col in TIMESTAMP_COLUMNS:
        data[col] = [getattr(d, col) for d in deals]
    fields = [d.fields or {} for d in deals]
    for n in names:
        data[n] = [f.get(n) for f in fields]
    signals = [d.signals or {} for d in deals]
    happened = any(signals)  # new deals (an import) have no declared events yet
    for e in events:
        data[event_at_column(e)] = [event_at(d, e) for d in deals] if happened else [None] * count
        data[event_visit_column(e)] = (
            [int(sig[e]["visit"]) if e in sig else 0 for sig in signals]
            if happened
            else [0] * count
        )
    columns = [*FRAME_COLUMNS, *names]
    for e in events:
        columns += [event_at_column(e), event_visit_column(e)]
    df = pd.DataFrame(data, columns=columns)
    for col in stamps:
        df[col] = pd.to_datetime(df[col], utc=True).astype("datetime64[us, UTC]")
    df["stage"] = df["stage"].astype("category")
    df["amount"] = df["amount"].astype("float64")
    return df


def _micros(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(microseconds since the epoch as int64, is-NaT mask) of a timestamp column."""
    values = (
        col.to_numpy(dtype="datetime64[us]")
        if col.dt.tz is None
        else col.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    )
    nat = np.isnat(values)
    return values.astype("int64"), nat


class _Categorical:
    """A column of hashable variable values as (distinct values, codes)."""

    def __init__(self, categories: list[Any], codes: np.ndarray):
        self.categories = categories
        self.codes = codes

    def mask(self, test: Any) -> np.ndarray:
        per_value = np.fromiter(
            (bool(test(c)) for c in self.categories), dtype=bool, count=len(self.categories)
        )
        picked: np.ndarray = per_value[self.codes]
        return picked


def _missing(x: Any) -> bool:
    # pandas hands back a missing value as None or NaN; the deal had no value at all.
    return x is None or (isinstance(x, float) and x != x)


def _categorical(values: pd.Series, convert: Any) -> _Categorical:
    if isinstance(values.dtype, pd.CategoricalDtype):
        # Already coded (e.g. the stage column): convert each category once; code -1 is "missing".
        cats = [convert(None if _missing(c) else c) for c in values.cat.categories] + [
            convert(None)
        ]
        codes = values.cat.codes.to_numpy().astype(np.intp)
        codes[codes < 0] = len(cats) - 1
        return _Categorical(cats, codes)
    raw = values.astype(object).where(values.notna(), None)
    keys = raw.map(lambda x: tuple(x) if isinstance(x, list) else x)
    codes, uniques = pd.factorize(keys, use_na_sentinel=False)
    cats = [
        convert(list(u) if isinstance(u, tuple) else None if _missing(u) else u) for u in uniques
    ]
    return _Categorical(cats, codes.astype(np.intp))


def variable_columns(
    compiled: CompiledRuleSet, frame: pd.DataFrame, now: datetime
) -> dict[str, Any]:
    """Every variable the rules read, one column each: float64 / bool arrays or categoricals."""
    now_us = int((now - datetime(1970, 1, 1, tzinfo=now.tzinfo)) // pd.Timedelta(microseconds=1))
    registry = variables_for(compiled.ruleset)
    cols: dict[str, Any] = {}
    micros: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def stamps(column: str) -> tuple[np.ndarray, np.ndarray]:
        found = micros.get(column)
        return found if found is not None else micros.setdefault(column, _micros(frame[column]))

    for name, _ in compiled.getters:
        source = registry[name].source
        if isinstance(source, Since | SinceEvent):
            if isinstance(source, SinceEvent):
                us, nat = stamps(event_at_column(source.event))
            else:
                us, nat = stamps(source.anchors[0])
                for fallback in source.anchors[1:]:  # last activity, else creation
                    fb_us, fb_nat = stamps(fallback)
                    us, nat = np.where(nat, fb_us, us), nat & fb_nat
            # (now - start).total_seconds() / 3600.0: int microseconds -> exact float -> two correctly
            # rounded divisions, the same floats as engine.rules.registry.hours_between (and, for a
            # working-time twin, as WorkingCalendar.hours over the worked microseconds).
            if source.calendar is not None:
                elapsed = worked_until(source.calendar, np.where(nat, now_us, us), now_us)
            else:
                elapsed = now_us - us
            hours = elapsed / 1e6 / 3600.0
            hours[nat] = 0.0
            cols[name] = hours
        elif isinstance(source, Present):
            cols[name] = frame[source.attribute].notna().to_numpy()
        elif isinstance(source, EventInVisit):
            visit = frame[event_visit_column(source.event)].to_numpy(dtype="int64")
            cols[name] = (visit > 0) & (visit == frame["stage_visit"].to_numpy(dtype="int64"))
        elif isinstance(source, Attribute) and isinstance(source.default, float):
            cols[name] = frame[source.attribute].fillna(source.default).to_numpy(dtype="float64")
        elif isinstance(source, Attribute):
            cols[name] = _categorical(frame[source.attribute], lambda x, d=source.default: x or d)
        elif isinstance(source, CustomField):
            cols[name] = _field_column(source.field, frame[name])
    return cols


def worked_until(calendar: WorkingCalendar, starts: np.ndarray, now_us: int) -> np.ndarray:
    """Working microseconds from each of ``starts`` (UTC microseconds) to ``now_us``, as int64.

    The calendar's yearly tables over the span, laid end to end, give one cumulative "worked before
    t" curve; each reading is the difference of two points on it (two ``searchsorted``), the same
    integers ``WorkingCalendar.worked_us`` sums year by year.
    """
    if len(starts) == 0:
        return np.zeros(0, dtype="int64")
    lo_us, hi_us = min(int(starts.min()), now_us), max(int(starts.max()), now_us)
    first = int(np.datetime64(lo_us, "us").astype("datetime64[Y]").astype("int64")) + 1970 - 2
    last = int(np.datetime64(hi_us, "us").astype("datetime64[Y]").astype("int64")) + 1970 + 2
    tables = [calendar.year(y) for y in range(max(first, 2), min(last, 9998) + 1)]
    offsets = np.cumsum([0] + [t.total for t in tables])[:-1]
    begin = np.concatenate([np.asarray(t.starts, dtype="int64") for t in tables])
    end = np.concatenate([np.asarray(t.ends, dtype="int64") for t in tables])
    before = np.concatenate(
        [np.asarray(t.before, dtype="int64") + off for t, off in zip(tables, offsets, strict=True)]
    )

    if len(begin) == 0:  # every day of the span is a day off
        return np.zeros(len(starts), dtype="int64")

    def curve(t: np.ndarray) -> np.ndarray:
        k = np.searchsorted(begin, t, side="right") - 1
        inside = k >= 0
        kk = np.where(inside, k, 0)
        value = before[kk] + np.minimum(t, end[kk]) - begin[kk]
        return np.where(inside, value, 0)

    at_now = int(curve(np.full(1, now_us, dtype="int64"))[0])
    out: np.ndarray = at_now - curve(starts.astype("int64"))
    return out


def _field_column(fd: Any, col: pd.Series) -> Any:
    if fd.type is FieldType.NUMERIC and col.dtype.kind == "f":
        return col.fillna(0.0).to_numpy(dtype="float64")
    if fd.type is FieldType.NUMERIC:
        return np.array(
            [field_value(fd, x) for x in col.astype(object).where(col.notna(), None)],
            dtype="float64",
        )
    if fd.type is FieldType.BOOLEAN and col.dtype == bool:
        return col.to_numpy()
    if fd.type is FieldType.TEXT:
        return _categorical(col, lambda x: field_value(fd, x) or "")
    return _categorical(col, lambda x: field_value(fd, x))


def numeric_mask(x: np.ndarray, op: str, threshold: float | int) -> np.ndarray:
    """business-rules' ``NumericType(x).<op>(threshold)`` for every element of ``x``."""
    if isinstance(threshold, int) and abs(threshold) > EXACT_INT:
        return np.fromiter(
            (exact_numeric(op, float(v), threshold) for v in x), dtype=bool, count=len(x)
        )
    d = x - float(threshold)
    lo, _, hi, _ = BOUNDS[op]
    sure = np.ones(len(x), dtype=bool)
    unsure = np.zeros(len(x), dtype=bool)
    if lo is not None:
        sure &= d > lo + MARGIN
        unsure |= np.abs(d - lo) <= MARGIN
    if hi is not None:
        sure &= d < hi - MARGIN
        unsure |= np.abs(d - hi) <= MARGIN
    idx = np.flatnonzero(unsure)
    if len(idx):
        sure = sure.copy()
        for (
            i
        ) in idx:  # the rare values within 1e-12 of an epsilon edge: business-rules' own Decimals
            sure[i] = exact_numeric(op, float(x[i]), threshold)
    return sure


class _Masks(Visitor[np.ndarray]):
    def __init__(self, compiled: CompiledRuleSet, cols: dict[str, Any], n: int):
        self.compiled, self.cols, self.n = compiled, cols, n
        self.leaves: dict[tuple[str, str, str], np.ndarray] = {}

    def all_(self, node: Group, parts: list[np.ndarray], path: str) -> np.ndarray:
        return parts[0] if len(parts) == 1 else np.logical_and.reduce(parts)

    def any_(self, node: Group, parts: list[np.ndarray], path: str) -> np.ndarray:
        return parts[0] if len(parts) == 1 else np.logical_or.reduce(parts)

    def leaf(self, node: Condition, path: str) -> np.ndarray:
        return self.leaf_mask(node.name, node.operator, node.value)

    def leaf_mask(self, name: str, op: str, value: Any) -> np.ndarray:
        key = (name, op, repr(value))
        found = self.leaves.get(key)
        if found is not None:
            return found
        kind, col = self.compiled.kinds[name], self.cols[name]
        if isinstance(col, _Categorical):
            mask = col.mask(leaf_test(kind, op, value))
        elif kind == "numeric":
            mask = numeric_mask(col, op, value)
        elif kind == "boolean":
            mask = col.copy() if op == "is_true" else ~col
        else:
            raise ValueError(f"no vectorised test for '{op}' on {kind} variable '{name}'")
        self.leaves[key] = mask
        return mask


def rule_masks(
    ruleset: RuleSet | CompiledRuleSet, frame: pd.DataFrame, now: datetime
) -> dict[str, np.ndarray]:
    """For every enabled rule, a boolean array over ``frame``'s rows: do its conditions hold at ``now``?

    Repeat policies are not applied here (that needs each deal's firings); this answers "which deals
    match", the question of a dry run over a whole funnel.
    """
    compiled = ruleset if isinstance(ruleset, CompiledRuleSet) else compile_ruleset(ruleset)
    masks = _Masks(compiled, variable_columns(compiled, frame, now), len(frame))
    return {r.rule.id: masks.visit(r.rule.conditions) for r in compiled.rules}


class _OptimisticMasks(_Masks):
    """``CompiledRuleSet``'s optimistic tree as masks: a rising leaf on a time variable whose anchor
    is set reads true (it can turn true with time alone), every other leaf as it reads now."""

    def __init__(
        self, compiled: CompiledRuleSet, cols: dict[str, Any], n: int, anchored: dict[str, Any]
    ):
        super().__init__(compiled, cols, n)
        self.anchored = anchored

    def leaf(self, node: Condition, path: str) -> np.ndarray:
        mask = super().leaf(node, path)
        if node.name in self.compiled.anchors and node.operator in RISING_OPS:
            anchored: np.ndarray = mask | self.anchored[node.name]
            return anchored
        return mask


def anchor_micros(compiled: CompiledRuleSet, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """For each time variable the rules read, its anchor (``compiled.anchors[name](deal)``) in
    microseconds since the epoch, ``NO_ANCHOR`` where it is not set."""
    registry = variables_for(compiled.ruleset)
    out: dict[str, np.ndarray] = {}
    for name in compiled.time_names:
        source = registry[name].source
        if isinstance(source, SinceEvent):
            us, nat = _micros(frame[event_at_column(source.event)])
        elif isinstance(source, Since):
            us, nat = _micros(frame[source.anchors[0]])
            for fallback in source.anchors[1:]:  # the first set one counts
                fb_us, fb_nat = _micros(frame[fallback])
                us, nat = np.where(nat, fb_us, us), nat & fb_nat
        else:
            continue
        out[name] = np.where(nat, NO_ANCHOR, us)
    return out


#: ``anchor_micros`` where a time variable's anchor is not set.
NO_ANCHOR = np.iinfo(np.int64).min


def anchored_columns(compiled: CompiledRuleSet, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """For each time variable the rules read: is its anchor set (``compiled.anchors[name](deal)``)?"""
    return {name: us != NO_ANCHOR for name, us in anchor_micros(compiled, frame).items()}


Masks = dict[str, "np.ndarray | None"]


def decision_masks(
    compiled: CompiledRuleSet, frame: pd.DataFrame, now: datetime
) -> tuple[Masks, Masks]:
    """(exact, optimistic) masks of every enabled rule over ``frame``; None for a rule that has a leaf
    with no vectorised test (the caller decides that rule with ``compiled``).

    ``exact``: do its conditions hold at ``now`` (as ``rule_masks``). ``optimistic``: could they hold
    with time alone (``CompiledRule.optimistic``), the question ``CompiledRuleSet.next_due`` asks.
    """
    cols = variable_columns(compiled, frame, now)
    exact_masks = _Masks(compiled, cols, len(frame))
    optimistic_masks = _OptimisticMasks(
        compiled, cols, len(frame), anchored_columns(compiled, frame)
    )
    exact: Masks = {}
    optimistic: Masks = {}
    for r in compiled.rules:
        for out, masks in ((exact, exact_masks), (optimistic, optimistic_masks)):
            try:
                out[r.rule.id] = masks.visit(r.rule.conditions)
            except ValueError:
                out[r.rule.id] = None
    return exact, optimistic


def match_counts(ruleset: RuleSet, frame: pd.DataFrame, now: datetime) -> dict[str, int]:
    """How many deals of ``frame`` each enabled rule would hit at ``now``."""
    return {rule_id: int(m.sum()) for rule_id, m in rule_masks(ruleset, frame, now).items()}

"""Checking import rows: each row's cells against what ``Deals.create`` checks for one deal.

The columns of a file are matched to fields first (``columns``): a mapping, else a column named like a
field; a column no field takes is reported. ``check_rows`` then checks every cell of every row with
``engine.core.deal_input`` (CSV text parsed by ``import_files.from_text``), the stage, its entry guard
and the manager, and returns the good rows and every problem (row, column, why), never only the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.core.access import Actor
from engine.core.deal_input import (
    GENERATED_KEY,
    MAX_SHORT_TEXT,
    TEXT_LIMITS,
    blank,
    clean_builtin,
    clean_key,
    clean_text,
    clean_value,
)
from engine.core.evaluation import guard_failed
from engine.core.import_files import IGNORE, from_text
from engine.document.ruleset import RuleSet
from engine.document.suggestions import suggest
from engine.errors import Forbidden, InvalidChange
from engine.i18n import _
from engine.rules.deal import BUILTIN_FIELDS
from engine.text import refusal as text_refusal

__all__ = [
    "MISSING",
    "TARGETS",
    "CheckedRow",
    "RowProblem",
    "check_rows",
    "columns",
    "known_targets",
]

#: Columns besides the deal's fields that a row may set.
KEY, STAGE, MANAGER = "key", "stage", "manager"
TARGETS = (KEY, STAGE, MANAGER, *BUILTIN_FIELDS)


@dataclass(frozen=True)
class RowProblem:
    """Why one row cannot be imported: its line in the file (or index in a batch), the column, why."""

    row: int
    column: str
    message: str


@dataclass
class CheckedRow:
    row: int
    key: str | None
    stage: str
    manager_id: int | None
    builtin: dict[str, Any]
    custom: dict[str, Any]


#: A value a row does not give (an API item without the key; CSV cells are all given).
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()


def known_targets(rs: RuleSet) -> list[str]:
    return [*TARGETS, *(f.name for f in rs.fields)]


def columns(
    rs: RuleSet, header: list[str], mapping: dict[str, str], line: int
) -> tuple[list[tuple[int, str]], list[RowProblem]]:
    """(column index, target field) of each imported column, and the columns no field takes."""
    known = known_targets(rs)
    for column, target in mapping.items():
        if column not in header:
            raise InvalidChange(
                _(
                    "the mapping names column '{column}', which the file does not have"
                    " (its columns: {columns})"
                ).format(column=column, columns=", ".join(header))
                + suggest(column, header)
            )
        if target != IGNORE and target not in known:
            raise InvalidChange(
                _(
                    "the mapping sends column '{column}' to '{field}', which is not a field of"
                    " funnel '{funnel}'"
                ).format(column=column, field=target, funnel=rs.funnel)
                + suggest(target, known)
            )
    targets: list[tuple[int, str]] = []
    warnings: list[RowProblem] = []
    taken: dict[str, str] = {}
    lower = {k.lower(): k for k in known}
    for i, column in enumerate(header):
        chosen = mapping.get(column) or lower.get(column.lower())
        if chosen is None:
            warnings.append(
                RowProblem(
                    line,
                    column,
                    _(
                        "no field takes this column; map it (COLUMN=FIELD) or leave it out"
                        " (COLUMN=-)"
                    )
                    + suggest(column, known),
                )
            )
            continue
        if chosen == IGNORE:
            continue
        if chosen in taken:
            raise InvalidChange(
                _("columns '{first}' and '{second}' both go to field '{field}'").format(
                    first=taken[chosen], second=column, field=chosen
                )
            )
        taken[chosen] = column
        targets.append((i, chosen))
    if not targets:
        raise InvalidChange(
            _(
                "no column of the file goes to a field of funnel '{funnel}' (its columns: {columns});"
                " map them (COLUMN=FIELD), the fields are: {fields}"
            ).format(funnel=rs.funnel, columns=", ".join(header), fields=", ".join(known))
        )
    return targets, warnings


def check_rows(
    rs: RuleSet,
    cols: Sequence[tuple[str, str]],
    rows: Iterable[tuple[int, Sequence[Any]]],
    managers: dict[str, int],
    who: Actor,
    *,
    text: bool,
) -> tuple[list[CheckedRow], list[RowProblem]]:
    """The rows that pass every check ``Deals.create`` makes, and every problem of the others.

    ``cols``: (column as the problem names it, target field); each row's values line up with them,
    ``MISSING`` where a row does not give one. ``text``: the values are CSV cells.
    """
    checks = {name: _field_check(rs, name, text) for name in known_targets(rs)}
    columns = {target: label for label, target in cols}
    rows = list(rows)
    # Column by column: each column's outcomes at once (a column of CSV text that passes as a whole
    # is taken without a call per cell), then row by row as before.
    given = list(zip(*(cells for _row, cells in rows), strict=True)) or [() for _c in cols]
    outcomes = [
        _column(target, list(raw), checks[target], text)
        for (_label, target), raw in zip(cols, given, strict=True)
    ]
    targets = [target for _label, target in cols]
    # CSV cells are never MISSING and no two columns go to one field (``columns``): a row whose
    # cells all passed is its values as they are.
    whole = text and len(set(targets)) == len(targets)
    failing: set[int] = set()
    for oks, _results in outcomes:
        if oks is not None:
            failing.update(i for i, ok in enumerate(oks) if not ok)
    by_row = (
        list(zip(*(results for _oks, results in outcomes), strict=True))
        if outcomes
        else [()] * len(rows)
    )
    given_builtin = [k for k in BUILTIN_FIELDS if k in set(targets)]
    at = {target: j for j, target in enumerate(targets)}
    at_key, at_stage, at_manager = at.get(KEY), at.get(STAGE), at.get(MANAGER)
    builtin_at = [(k, at[k]) for k in given_builtin]
    custom_at = [(t, j) for j, t in enumerate(targets) if t not in TARGETS]
    stage_of: dict[str, Any] = {}
    own_only = who.own_deals_only
    good: list[CheckedRow] = []
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for i, ((row, cells), found) in enumerate(zip(rows, by_row, strict=True)):
        bad = False
        if whole and i not in failing:
            key = found[at_key] if at_key is not None else None
            given_stage = found[at_stage] if at_stage is not None else None
            name = found[at_manager] if at_manager is not None else None
            builtin = {k: found[j] for k, j in builtin_at}
            custom = {k: found[j] for k, j in custom_at if found[j] is not None}
        else:
            values: dict[str, Any] = {}
            for (column, target), raw, (oks, _results), result in zip(
                cols, cells, outcomes, found, strict=True
            ):
                if raw is MISSING:
                    continue
                if target in values:  # an API item giving "phone" and "fields.phone"
                    problems.append(
                        RowProblem(
                            row, column, _("field '{name}' is given twice").format(name=target)
                        )
                    )
                    bad = True
                    continue
                if oks is None or oks[i]:
                    values[target] = result
                else:
                    problems.append(RowProblem(row, column, result))
                    bad = True
            key = values.pop(KEY, None)
            given_stage = values.pop(STAGE, None)
            name = values.pop(MANAGER, None)
            builtin = {k: values.pop(k) for k in given_builtin if k in values}
            custom = {k: v for k, v in values.items() if v is not None or not text}
        if key is not None:
            if key in first_line:
                problems.append(
                    RowProblem(
                        row,
                        columns[KEY],
                        (
                            _("key '{key}' is given again (first on line {first})")
                            if text
                            else _("key '{key}' is given again (first in item {first})")
                        ).format(key=key, first=first_line[key]),
                    )
                )
                bad = True
            else:
                first_line[key] = row
        stage = given_stage or rs.entry_stage
        manager_id = None
        if name:
            manager_id = managers.get(name)
            if manager_id is None:
                problems.append(
                    RowProblem(
                        row,
                        columns[MANAGER],
                        _("no manager named '{name}'").format(name=name)
                        + suggest(name, list(managers)),
                    )
                )
                bad = True
        if own_only:  # a manager's new deals are theirs
            if manager_id not in (None, who.manager_id):
                problems.append(
                    RowProblem(
                        row, columns[MANAGER], _("a manager creates deals for themselves only")
                    )
                )
                bad = True
            manager_id = who.manager_id
        builtin.setdefault("title", "")
        st = stage_of.get(stage, MISSING)
        if st is MISSING:
            st = stage_of[stage] = rs.stage(stage)
        if st is not None and st.guard and not bad:
            missing = [
                f
                for f in st.guard.required_fields
                if blank(builtin.get(f) if f in BUILTIN_FIELDS else custom.get(f))
            ]
            if missing:
                problems.append(
                    RowProblem(row, columns.get(STAGE, STAGE), str(guard_failed(rs, st, missing)))
                )
                bad = True
        if not bad:
            good.append(CheckedRow(row, key, stage, manager_id, builtin, custom))
    return good, problems


def _column(
    target: str, raw: list[Any], check: Callable[[Any], Any], text: bool
) -> tuple[list[bool] | None, list[Any]]:
    """(whether each cell passed, or None when all did; each cell's value or why it failed)."""
    if text:  # CSV text: each distinct cell checked once
        fast = _passing_text(target, raw)
        if fast is not None:
            return None, fast
        once = {v: _outcome(check, v) for v in dict.fromkeys(raw)}
        done = list(map(once.__getitem__, raw))
    else:
        run = _memoized(check)
        done = [run(v) if v is not MISSING else (True, None) for v in raw]
    oks = [ok for ok, _value in done]
    return (None if all(oks) else oks), [value for _ok, value in done]


def _passing_text(target: str, cells: list[Any]) -> list[Any] | None:
    """The stored values of a column of CSV text (key, title, phone, email) if every cell passes its
    check as it is, without a call per cell; None to check cell by cell. The same as the checks:
    ``clean_key`` of the stripped text (empty: no key) and ``clean_builtin`` of the text, which take
    a value that fits, holds no refused character and is not a generated ``D-<n>`` key. One search
    over the column's text finds a refused character if any cell has one."""
    if target not in TEXT_COLUMNS or not cells or set(map(type, cells)) != {str}:
        return None
    values = [c.strip() for c in cells] if target == KEY else cells
    limit, one_line = TEXT_LIMITS[target], target != "title"
    if max(map(len, values)) > limit or text_refusal("".join(values), one_line=one_line):
        return None
    if target == KEY:
        if any(map(GENERATED_KEY.match, values)):
            return None
        return [v or None for v in values]
    return values


#: The columns ``_passing_text`` takes as a whole: the key and the built-in text fields.
TEXT_COLUMNS = frozenset(TEXT_LIMITS)


def _memoized(check: Callable[[Any], Any]) -> Callable[[Any], tuple[bool, Any]]:
    """``check`` as ``raw -> (True, value)`` or ``(False, why)``, run once per distinct raw value of a
    column (a lead list repeats its stages, sources and yes/no answers thousands of times). A column
    of mostly distinct values (keys, phones) stops remembering after its first ``MEMO_TRIAL``."""
    memo: dict[tuple[type, Any], tuple[bool, Any]] = {}
    seen = [0]

    def run(raw: Any) -> tuple[bool, Any]:
        if seen[0] > MEMO_TRIAL:
            return _outcome(check, raw)
        key = (type(raw), raw)  # True and 1 are equal keys, not equal values
        try:
            found = memo.get(key)
        except TypeError:  # a list or an object from an API item
            return _outcome(check, raw)
        if found is None:
            found = memo[key] = _outcome(check, raw)
            if len(memo) * 2 > MEMO_TRIAL:
                seen[0] += 1
        return found

    return run


#: After this many distinct values a column's checks are not remembered.
MEMO_TRIAL = 2000


def _outcome(check: Callable[[Any], Any], raw: Any) -> tuple[bool, Any]:
    try:
        return True, check(raw)
    except (InvalidChange, Forbidden) as exc:
        return False, str(exc)


def _field_check(rs: RuleSet, name: str, text: bool) -> Callable[[Any], Any]:
    """The check of one target field: a raw value (a CSV cell when ``text``) to its stored value."""
    if name == KEY:
        return lambda v: clean_key(v) if v is not None and str(v).strip() else None
    if name == STAGE:
        stages = {x.id for x in rs.stages}

        def stage(v: Any) -> str | None:
            if v in stages:
                return str(v)
            if v is None or (isinstance(v, str) and not v.strip()):
                return None
            given = clean_text(
                _("stage"), v.strip() if isinstance(v, str) else v, MAX_SHORT_TEXT, one_line=True
            )
            if rs.stage(given) is None:
                raise InvalidChange(
                    _("unknown stage '{stage}' in funnel '{funnel}'").format(
                        stage=given, funnel=rs.funnel
                    )
                    + suggest(given, [x.id for x in rs.stages])
                )
            return given

        return stage
    if name == MANAGER:
        return lambda v: (
            None
            if v is None or (isinstance(v, str) and not v.strip())
            else clean_text(
                _("manager"), v.strip() if isinstance(v, str) else v, MAX_SHORT_TEXT, one_line=True
            )
        )
    if name in BUILTIN_FIELDS:
        if text and name == "amount":
            return lambda v: clean_builtin(name, from_text("amount", v))
        return lambda v: clean_builtin(name, v)
    fd = rs.field(name)
    if fd is None:  # _known lists only the funnel's fields
        raise InvalidChange(
            _("unknown field '{name}' in funnel '{funnel}'").format(name=name, funnel=rs.funnel)
        )
    if text:
        return lambda v: clean_value(fd, from_text(fd.type, v))
    return lambda v: clean_value(fd, v)

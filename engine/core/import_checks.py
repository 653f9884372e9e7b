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
    MAX_SHORT_TEXT,
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
    plan = [(label, target, _memoized(checks[target])) for label, target in cols]
    columns = {target: label for label, target in cols}
    good: list[CheckedRow] = []
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for row, cells in rows:
        values: dict[str, Any] = {}
        bad = False
        for (column, target, check), raw in zip(plan, cells, strict=True):
            if raw is MISSING:
                continue
            if target in values:  # an API item giving "phone" and "fields.phone"
                problems.append(
                    RowProblem(row, column, _("field '{name}' is given twice").format(name=target))
                )
                bad = True
                continue
            ok, result = check(raw)
            if ok:
                values[target] = result
            else:
                problems.append(RowProblem(row, column, result))
                bad = True
        key = values.pop(KEY, None)
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
        stage = values.pop(STAGE, None) or rs.entry_stage
        manager_id = None
        name = values.pop(MANAGER, None)
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
        if who.own_deals_only:  # a manager's new deals are theirs
            if manager_id not in (None, who.manager_id):
                problems.append(
                    RowProblem(
                        row, columns[MANAGER], _("a manager creates deals for themselves only")
                    )
                )
                bad = True
            manager_id = who.manager_id
        builtin = {k: values.pop(k) for k in BUILTIN_FIELDS if k in values}
        builtin.setdefault("title", "")
        custom = {k: v for k, v in values.items() if v is not None or not text}
        st = rs.stage(stage)
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

"""Validation of rule-set documents: every check, every problem with its JSON path.

This is the one gate in front of business-rules: it resolves names with ``getattr`` and checks
structure with ``assert``, so nothing reaches ``business_rules.engine`` that did not pass here. Names a
rule may use come from ``business_rules.export_rule_data`` only.
"""

from __future__ import annotations

import difflib
import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import re2
from business_rules import export_rule_data
from pydantic import ValidationError

from engine.document.regex import MAX_PROGRAM, compile_pattern, program_size
from engine.document.ruleset import (
    ActionSpec,
    FieldDef,
    FieldType,
    Rule,
    RuleSet,
    Stage,
    Transition,
)
from engine.document.template import TemplateError, placeholders
from engine.errors import Problem, RuleSetInvalid
from engine.rules.actions import TEMPLATE_PARAMS, DealActions
from engine.rules.deal import BUILTIN_FIELDS, TEMPLATE_BUILTINS
from engine.rules.variables import TIME_VARIABLES, variables_class
from engine.text import name_refusal, refusal, storable

MAX_DOCUMENT_BYTES = 2_000_000
MAX_CONDITION_DEPTH = 12
MAX_RULES = 2_000
MAX_STAGES = 200
MAX_REGEX_LENGTH = 500
#: Integers with more digits are refused (Python itself cannot read one beyond 4,300 digits).
MAX_INT_DIGITS = 100
#: A task due further out than this is a typo, and far-off due times overflow the calendar.
MAX_DUE_IN_HOURS = 87_600  # ten years
#: Thresholds on "hours since" variables: the engine turns them into due times (anchor ± hours), and
#: far beyond a thousand years that date arithmetic overflows and would break every change to a deal.
MAX_TIME_HOURS = 10_000_000
_IDENT = re2.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: Lengths of the storage columns these values are copied into (storage/models.py). SQLite ignores
#: lengths, PostgreSQL refuses longer text, and then every change that fires the rule would fail.
MAX_ID_LENGTH = 63  # funnels.id and deals.stage are String(64); firings.rule_id String(100)
MAX_FUNNEL_NAME = 200  # funnels.name
MAX_RULE_NAME = 300  # firings.rule_name
#: Not stored in a column of their own, but shown in tables, menus and messages: kept readable.
MAX_STAGE_NAME = 200
MAX_LABEL = 200  # field labels and select options

#: RE2's shorthand classes and word boundaries are ASCII-only; Python's ``re`` (what plain
#: business-rules runs) makes them Unicode-aware. "^\w+$" matches "Олена" in one and not the other,
#: so these are refused with the Unicode spelling that means what the author most likely wanted.
_ASCII_SHORTHANDS = {
    "w": r"[\p{L}\p{Nd}_]",
    "W": r"[^\p{L}\p{Nd}_]",
    "d": r"\p{Nd}",
    "D": r"\P{Nd}",
    "s": r"[\p{Z}\t\n\r\f\v]",
    "S": r"[^\p{Z}\t\n\r\f\v]",
    "b": r"(^|[^\p{L}\p{Nd}_]) … ([^\p{L}\p{Nd}_]|$) around the word",
    "B": r"an explicit [\p{L}\p{Nd}_] on both sides",
}


def _re2_reason(exc: Exception) -> str:
    """RE2's reason for refusing a pattern as plain text (it arrives as bytes), with a hint where useful."""
    raw = exc.args[0] if exc.args else str(exc)
    reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if reason.startswith("invalid perl operator") or (reason.startswith("invalid escape sequence") and reason[-1:].isdigit()):
        reason += " (lookaround and backreferences are not supported)"
    return reason


def rule_data(ruleset: RuleSet | None = None) -> dict[str, Any]:
    """``export_rule_data`` for a rule set: the single source of what a rule may name."""
    from engine.rules.variables import DealVariables

    variables = variables_class(ruleset) if ruleset is not None else DealVariables
    return export_rule_data(variables, DealActions)


def _suggest(word: Any, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def regex_differences(pattern: str) -> list[str]:
    """Why ``pattern`` would match differently under RE2 than under Python's ``re`` (empty: it would not).

    Walks the pattern escape by escape, so ``\\\\w`` (a literal backslash, then ``w``) is not mistaken
    for ``\\w``, and text quoted with ``\\Q…\\E`` is skipped.
    """
    found: list[str] = []
    i, n = 0, len(pattern)
    in_class, class_first = False, -1
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1:i + 2]
            if nxt == "Q":  # RE2 quotes literally up to \E
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            if nxt in _ASCII_SHORTHANDS:
                what = "a word boundary" if nxt in "bB" else "a shorthand class"
                found.append(f"\\{nxt} is {what} that RE2 limits to ASCII while Python's re does not (so"
                             f" Cyrillic letters, other digits or non-ASCII spaces would match differently);"
                             f" write {_ASCII_SHORTHANDS[nxt]} instead")
            i += 2
            continue
        if in_class:
            if c == "]" and i > class_first:
                in_class = False
            elif c == "[" and pattern[i + 1:i + 2] in (":", ".", "="):
                found.append(f"'[{pattern[i + 1]}' inside a character class is a POSIX class in RE2 (ASCII-only)"
                             " but literal characters in Python's re; write \\p{L}, \\p{Nd}, … or escape the '['")
                i += 2
                continue
        elif c == "[":
            in_class = True
            class_first = i + 2 if pattern[i + 1:i + 2] == "^" else i + 1  # a ']' right here is literal
        i += 1
    return found


class _NonStandardConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # Python's json reads NaN/Infinity, but other JSON readers (and exports) would choke on them.
    raise _NonStandardConstant(name)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys silently: a second "value" would hide the first.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            near = ", ".join(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)[:40]}" for k, v in pairs[:3])
            raise _DuplicateKey(f"key '{key}' appears twice in one object ({{{near}{', …' if len(pairs) > 3 else ''}}})")
        out[key] = value
    return out


def parse_json(text: str | bytes, source: str = "document") -> Any:
    """Parse JSON, reporting syntax errors with line and column."""
    if isinstance(text, bytes):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise RuleSetInvalid([Problem("", f"{source} is {len(text)} bytes; the limit is {MAX_DOCUMENT_BYTES}")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RuleSetInvalid([Problem("", f"{source} is not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise RuleSetInvalid([Problem("", f"{source} is larger than the limit of {MAX_DOCUMENT_BYTES} bytes")])
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys,
                          parse_int=_parse_int)
    except _NonStandardConstant as exc:
        raise RuleSetInvalid(
            [Problem("", f"{source} is not valid JSON: {exc} is not a JSON value (write a number or null)")]
        ) from None
    except _DuplicateKey as exc:
        raise RuleSetInvalid([Problem("", f"{source}: {exc}")]) from None
    except json.JSONDecodeError as exc:
        raise RuleSetInvalid(
            [Problem("", f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")]
        ) from None
    except RecursionError:
        raise RuleSetInvalid([Problem("", f"{source} is nested too deeply to read")]) from None
    except ValueError as exc:  # anything else Python's json refuses: still one sentence, no traceback
        raise RuleSetInvalid([Problem("", f"{source} is not valid JSON: {storable(str(exc), 200)}")]) from None


def read_document(path: str | Path, source: str | None = None) -> Any:
    """Parse the rule-set file at ``path``, reading at most ``MAX_DOCUMENT_BYTES`` + 1 bytes of it.

    A larger file, or something that is not a regular file (a folder, a pipe that would block), is
    refused without reading it. ``OSError`` for a file that cannot be opened.
    """
    source = source or str(path)
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise RuleSetInvalid([Problem("", f"{source} is not a regular file")])
    if info.st_size > MAX_DOCUMENT_BYTES:
        raise RuleSetInvalid([Problem("", f"{source} is {info.st_size} bytes; the limit is {MAX_DOCUMENT_BYTES}")])
    with open(path, "rb") as fh:
        return parse_json(fh.read(MAX_DOCUMENT_BYTES + 1), source)


class _HugeInt:
    """An integer literal too long to read, kept in its place so the problem gets a JSON path."""

    def __init__(self, digits: int):
        self.digits = digits


def _parse_int(literal: str) -> int | _HugeInt:
    digits = len(literal) - literal.startswith("-")
    return _HugeInt(digits) if digits > MAX_INT_DIGITS else int(literal)


def validate_text(text: str | bytes, *, known_funnels: Iterable[str] = (), source: str = "document") -> RuleSet:
    return validate_document(parse_json(text, source), known_funnels=known_funnels)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of JSON containers, stopping early past ``limit``."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, d = stack.pop()
        if d > limit:
            return d
        if isinstance(item, dict):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in item)
    return deepest


def _value_problems(value: Any) -> list[Problem]:
    """Every text, key and number in ``value`` that cannot be stored and read back alike, with its path.

    Text: no lone surrogates, NUL or other C0 control characters (tab and line breaks are fine).
    Numbers: finite, and integers of at most ``MAX_INT_DIGITS`` digits.
    """
    found: list[tuple[str, Problem]] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    huge = 10 ** MAX_INT_DIGITS

    def add(loc: tuple[Any, ...], message: str) -> None:
        path = _path(loc)
        found.append((path, Problem(path, message)))

    while stack:
        item, loc = stack.pop()
        if isinstance(item, str):
            reason = refusal(item)
            if reason is not None:
                add(loc, f"text {reason}")
        elif isinstance(item, _HugeInt):
            add(loc, f"a number with {item.digits} digits is too large (at most {MAX_INT_DIGITS} digits)")
        elif isinstance(item, int) and not isinstance(item, bool) and not -huge < item < huge:
            add(loc, f"a number with more than {MAX_INT_DIGITS} digits is too large (at most {MAX_INT_DIGITS} digits)")
        elif isinstance(item, float) and (item != item or item in (float("inf"), float("-inf"))):
            add(loc, "not a finite number (NaN and Infinity are not JSON)")
        elif isinstance(item, dict):
            for k, v in item.items():
                reason = refusal(k) if isinstance(k, str) else None
                key = storable(k) if reason is not None else k
                if reason is not None:
                    add((*loc, key), f"key {reason}")
                stack.append((v, (*loc, key)))
        elif isinstance(item, list):
            stack.extend((v, (*loc, i)) for i, v in enumerate(item))
    return [problem for _path_text, problem in sorted(found, key=lambda pair: pair[0])]


def validate_document(doc: Any, *, known_funnels: Iterable[str] = ()) -> RuleSet:
    """Check a parsed document; return the ``RuleSet`` or raise ``RuleSetInvalid`` with every problem.

    ``known_funnels`` are funnel ids that ``start_process`` may name besides the document's own.
    """
    if not isinstance(doc, dict):
        raise RuleSetInvalid([Problem("", f"a rule set must be a JSON object, not {type(doc).__name__}")])
    # Conditions nest by all/any objects inside lists: 2 JSON levels per group, plus the document's own.
    if _depth(doc, 2 * MAX_CONDITION_DEPTH + 8) > 2 * MAX_CONDITION_DEPTH + 7:
        raise RuleSetInvalid([Problem("", f"document is nested too deeply (conditions may nest at most {MAX_CONDITION_DEPTH} groups)")])
    # Values no backend stores alike (a lone surrogate, NUL), numbers Python cannot print and NaN or
    # Infinity, which no JSON reader accepts: each refused with its path, before anything reads them.
    bad_values = _value_problems(doc)
    if bad_values:
        raise RuleSetInvalid(bad_values)
    # Documents handed over as Python objects (API, builder) skip parse_json, so the size bound is here too.
    size = len(json.dumps(doc, ensure_ascii=False, default=str).encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        raise RuleSetInvalid([Problem("", f"document is {size} bytes; the limit is {MAX_DOCUMENT_BYTES}")])
    try:
        ruleset = RuleSet.model_validate(doc)
    except ValidationError as exc:
        shape = [_shape_problem(err) for err in exc.errors()]
        # Docs promise every problem at once: check what is well-formed too, so fixing the shape does
        # not reveal a second round of problems.
        raise RuleSetInvalid(shape + _semantic_problems_of_partial(doc, shape, set(known_funnels))) from None
    problems = _Checker(ruleset, set(known_funnels)).run()
    if problems:
        raise RuleSetInvalid(problems)
    return ruleset


def _shape_problem(err: Any) -> Problem:
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = f"unknown key '{err['loc'][-1]}'"
    elif err["type"] == "missing":
        msg = f"required key '{err['loc'][-1]}' is missing"
    return Problem(_path(err["loc"]), msg)


#: Stand-ins for required values that are missing or malformed, so the rest of the item can be checked.
#: Whatever the checker says about a stand-in is dropped (see ``_semantic_problems_of_partial``).
_PLACEHOLDERS: dict[str, Any] = {"funnel": "", "name": "", "id": "", "stages": [], "from_": "", "to": "",
                                 "conditions": {}, "actions": []}
_ITEM_MODELS: dict[tuple[type, str], type] = {
    (RuleSet, "fields"): FieldDef, (RuleSet, "stages"): Stage, (RuleSet, "transitions"): Transition,
    (RuleSet, "rules"): Rule, (Rule, "actions"): ActionSpec,
}


def _salvage(model: type, data: Any) -> Any:
    """``model`` built from the parts of ``data`` that validate on their own; None if ``data`` is no object."""
    if not isinstance(data, dict):
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        pass
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key not in data:
            continue
        item_model = _ITEM_MODELS.get((model, name))
        if item_model is not None:
            items = data[key] if isinstance(data[key], list) else []
            values[name] = [x for x in (_salvage(item_model, item) for item in items) if x is not None]
            continue
        try:
            model.__pydantic_validator__.validate_assignment(model.model_construct(), name, data[key])
        except ValidationError:
            continue
        values[name] = getattr(model.__pydantic_validator__.validate_assignment(
            model.model_construct(), name, data[key]), name)
    for name, info in model.model_fields.items():
        if name not in values and info.is_required():
            if model is FieldDef and name == "type":
                values[name] = FieldType.SELECT if values.get("options") else FieldType.TEXT
            else:
                values[name] = _PLACEHOLDERS.get(name, "")
    return model.model_construct(**values)


def _semantic_problems_of_partial(doc: dict[str, Any], shape: list[Problem], known: set[str]) -> list[Problem]:
    """The checker's problems on the well-formed parts of a document that failed the shape check.

    A problem at or under a path with a shape problem (a stand-in's), or at a path above one (e.g. "a
    funnel needs at least one stage" when the only stage is malformed), is left out: the shape
    problem already says what to fix there.
    """
    try:
        partial = _salvage(RuleSet, doc)
        found = _Checker(partial, known).run()
    except Exception:  # noqa: BLE001 - a document too broken to check further still gets its shape problems
        return []
    bad = {p.path for p in shape}

    def related(path: str) -> bool:
        for b in bad:
            if path == b or path.startswith((b + ".", b + "[")):
                return True
            if path and b.startswith((path + ".", path + "[")):
                return True
        return False

    # Items dropped as malformed shift the indices after them: only positions before the first dropped
    # item in a list are trustworthy, so problems in later items are re-indexed to document order.
    return [p for p in (_reindex(problem, doc, partial) for problem in found) if p is not None and not related(p.path)]


def _reindex(problem: Problem, doc: dict[str, Any], partial: Any) -> Problem | None:
    """``problem`` with its list indices mapped from the salvaged rule set back to the document."""
    path = problem.path
    for top in ("fields", "stages", "transitions", "rules"):
        if not path.startswith(top + "["):
            continue
        raw = doc.get(top)
        if not isinstance(raw, list):
            return problem
        kept = [i for i, item in enumerate(raw) if isinstance(item, dict)]
        index_text = path[len(top) + 1:path.index("]")]
        if not index_text.isdigit() or int(index_text) >= len(kept):
            return problem
        path = f"{top}[{kept[int(index_text)]}]{path[path.index(']') + 1:]}"
        if top == "rules":
            path = _reindex_actions(path, raw[kept[int(index_text)]])
        return Problem(path, problem.message)
    return problem


def _reindex_actions(path: str, rule: dict[str, Any]) -> str:
    marker = ".actions["
    at = path.find(marker)
    actions = rule.get("actions")
    if at < 0 or not isinstance(actions, list):
        return path
    start = at + len(marker)
    end = path.index("]", start)
    kept = [i for i, item in enumerate(actions) if isinstance(item, dict)]
    n = int(path[start:end]) if path[start:end].isdigit() else -1
    return path if not 0 <= n < len(kept) else f"{path[:start]}{kept[n]}{path[end:]}"


class _Checker:
    def __init__(self, ruleset: RuleSet, known_funnels: set[str]):
        self.rs = ruleset
        self.known_funnels = known_funnels | {ruleset.funnel}
        self.problems: list[Problem] = []
        self.stage_ids = [s.id for s in ruleset.stages]
        self.field_names = [f.name for f in ruleset.fields]

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def run(self) -> list[Problem]:
        self.check_header()
        self.check_fields()
        if not self.problems:
            # Custom fields become variables; only build the class from a clean field list.
            self.data = rule_data(self.rs)
        else:
            self.data = rule_data(None)
        self.variables = {v["name"]: v for v in self.data["variables"]}
        self.operators = {t: {o["name"]: o for o in ops} for t, ops in self.data["variable_type_operators"].items()}
        self.actions = {a["name"]: a for a in self.data["actions"]}
        self.check_stages()
        self.check_transitions()
        self.check_rules()
        return self.problems

    def check_header(self) -> None:
        self.check_ident("funnel", self.rs.funnel, "funnel id")
        if not self.rs.name.strip():
            self.add("name", "funnel name is empty")
        self.check_name("name", self.rs.name, "funnel name")
        self.check_length("name", self.rs.name, MAX_FUNNEL_NAME, "a funnel name")
        if len(self.rs.rules) > MAX_RULES:
            self.add("rules", f"{len(self.rs.rules)} rules; the limit is {MAX_RULES}")
        if len(self.rs.stages) > MAX_STAGES:
            self.add("stages", f"{len(self.rs.stages)} stages; the limit is {MAX_STAGES}")

    def check_ident(self, path: str, value: str, what: str) -> bool:
        """A lowercase identifier that fits its storage column; False (and a problem) otherwise."""
        reason = name_refusal(value)
        if reason is not None:  # said plainly: quoted in the message below, it would reorder the line
            self.add(path, f"{what} {reason}")
            return False
        if len(value) > MAX_ID_LENGTH:
            self.add(path, f"'{value[:30]}…' is {len(value)} characters long; a {what} may have at most {MAX_ID_LENGTH}")
            return False
        if not _IDENT.match(value):
            self.add(path, f"'{value}' is not a valid {what} (lowercase letters, digits and '_', starting with a letter)")
            return False
        return True

    def check_length(self, path: str, value: str, limit: int, what: str) -> None:
        if len(value) > limit:
            self.add(path, f"'{value[:30]}…' is {len(value)} characters long; {what} may have at most {limit}")

    def check_name(self, path: str, value: str, what: str) -> None:
        """A name people read: no bidirectional overrides, and not only invisible characters."""
        reason = name_refusal(value) if value.strip() else None  # empty: each caller's own rule
        if reason is not None:
            self.add(path, f"{what} {reason}")

    def check_fields(self) -> None:
        from engine.rules.variables import DealVariables

        reserved = set(dir(DealVariables)) | set(BUILTIN_FIELDS) | set(TEMPLATE_BUILTINS) | {"deal", "now"}
        seen: set[str] = set()
        for i, f in enumerate(self.rs.fields):
            p = f"fields[{i}]"
            if not self.check_ident(f"{p}.name", f.name, "field name"):
                pass
            elif f.name in reserved:
                self.add(f"{p}.name", f"'{f.name}' is reserved (a built-in variable, deal attribute or engine name)")
            if f.name in seen:
                self.add(f"{p}.name", f"duplicate field name '{f.name}'")
            seen.add(f.name)
            self.check_length(f"{p}.label", f.label, MAX_LABEL, "a field label")
            self.check_name(f"{p}.label", f.label, "field label")
            for k, option in enumerate(f.options):
                self.check_length(f"{p}.options[{k}]", option, MAX_LABEL, "an option")
                self.check_name(f"{p}.options[{k}]", option, "option")
            if f.type is FieldType.SELECT:
                if not f.options:
                    self.add(f"{p}.options", f"select field '{f.name}' needs at least one option")
                if any(not o.strip() for o in f.options):
                    # An empty answer means "not answered" everywhere else, so it cannot also be an option.
                    self.add(f"{p}.options", f"select field '{f.name}' has an empty option")
                if len({o.lower() for o in f.options}) != len(f.options):
                    self.add(f"{p}.options", "options repeat (options are compared case-insensitively)")
            elif f.options:
                self.add(f"{p}.options", f"only select fields have options; '{f.name}' is {f.type.value}")

    def check_stages(self) -> None:
        if not self.rs.stages:
            self.add("stages", "a funnel needs at least one stage")
        seen: set[str] = set()
        for i, s in enumerate(self.rs.stages):
            p = f"stages[{i}]"
            self.check_ident(f"{p}.id", s.id, "stage id")
            if s.id in seen:
                self.add(f"{p}.id", f"duplicate stage id '{s.id}'")
            seen.add(s.id)
            if not s.name.strip():
                self.add(f"{p}.name", "stage name is empty")
            self.check_name(f"{p}.name", s.name, "stage name")
            self.check_length(f"{p}.name", s.name, MAX_STAGE_NAME, "a stage name")
            if s.guard:
                for j, name in enumerate(s.guard.required_fields):
                    if name not in self.field_names and name not in BUILTIN_FIELDS:
                        self.add(f"{p}.guard.required_fields[{j}]", f"unknown field '{name}'{_suggest(name, self.field_names + list(BUILTIN_FIELDS))}")
        if self.rs.initial_stage is not None and self.rs.initial_stage not in self.stage_ids:
            self.add("initial_stage", f"unknown stage '{self.rs.initial_stage}'{_suggest(self.rs.initial_stage, self.stage_ids)}")

    def check_transitions(self) -> None:
        seen: set[tuple[str, str]] = set()
        for i, t in enumerate(self.rs.transitions):
            for key, value in (("from", t.from_), ("to", t.to)):
                if value not in self.stage_ids:
                    self.add(f"transitions[{i}].{key}", f"unknown stage '{value}'{_suggest(value, self.stage_ids)}")
            if t.from_ == t.to:
                self.add(f"transitions[{i}]", f"a transition from '{t.from_}' to itself is not allowed")
            if (t.from_, t.to) in seen:
                self.add(f"transitions[{i}]", f"duplicate transition {t.from_} → {t.to}")
            seen.add((t.from_, t.to))

    def check_rules(self) -> None:
        seen: set[str] = set()
        for i, rule in enumerate(self.rs.rules):
            p = f"rules[{i}]"
            self.check_ident(f"{p}.id", rule.id, "rule id")
            self.check_length(f"{p}.name", rule.name, MAX_RULE_NAME, "a rule name")
            self.check_name(f"{p}.name", rule.name, "rule name")
            if rule.id in seen:
                self.add(f"{p}.id", f"duplicate rule id '{rule.id}'")
            seen.add(rule.id)
            self.check_group(rule.conditions, f"{p}.conditions", 1)
            if not rule.actions:
                self.add(f"{p}.actions", "a rule needs at least one action")
            for j, action in enumerate(rule.actions):
                self.check_action(action.name, action.params, f"{p}.actions[{j}]")

    # -- conditions ------------------------------------------------------------------------------
    def check_group(self, node: Any, p: str, depth: int) -> None:
        if not isinstance(node, dict):
            self.add(p, f"a condition must be an object, not {type(node).__name__}")
            return
        keys = set(node)
        if keys & {"all", "any"}:
            # ``depth`` counts groups: a leaf inside the deepest allowed group is fine.
            if depth > MAX_CONDITION_DEPTH:
                self.add(p, f"conditions nest deeper than {MAX_CONDITION_DEPTH} groups")
                return
            if len(keys) != 1:
                self.add(p, f"a group has exactly one key, 'all' or 'any'; found {sorted(keys)}")
                return
            kind = next(iter(keys))
            items = node[kind]
            if not isinstance(items, list):
                self.add(f"{p}.{kind}", f"'{kind}' must be a list of conditions")
                return
            if not items:
                # business-rules only asserts this (and python -O drops the assert): an empty group would fire.
                self.add(f"{p}.{kind}", f"'{kind}' is empty; a group needs at least one condition")
            for k, child in enumerate(items):
                self.check_group(child, f"{p}.{kind}[{k}]", depth + 1)
            return
        self.check_leaf(node, p)

    def check_leaf(self, node: dict[str, Any], p: str) -> None:
        unknown = set(node) - {"name", "operator", "value"}
        for key in sorted(unknown):
            self.add(f"{p}.{key}", f"unknown key '{key}' in a condition (expected name, operator, value){_suggest(key, ['name', 'operator', 'value', 'all', 'any'])}")
        for key in ("name", "operator", "value"):
            if key not in node:
                hint = " (business-rules reads it even for operators without input; use null)" if key == "value" else ""
                self.add(p, f"required key '{key}' is missing{hint}")
        name, op = node.get("name"), node.get("operator")
        if "name" not in node or "operator" not in node:
            return
        if not isinstance(name, str) or name not in self.variables:
            self.add(f"{p}.name", f"'{name}' is not a rule variable{_suggest(name, self.variables)}")
            return
        var = self.variables[name]
        ops = self.operators[var["field_type"]]
        if not isinstance(op, str) or op not in ops:
            self.add(
                f"{p}.operator",
                f"'{op}' is not an operator for {var['field_type']} variables{_suggest(op, ops)}"
                f" (allowed: {', '.join(sorted(ops))})",
            )
            return
        if "value" in node:
            self.check_value(var, ops[op], node["value"], f"{p}.value")

    def check_value(self, var: dict[str, Any], op: dict[str, Any], value: Any, p: str) -> None:
        input_type = op["input_type"]
        name = var["name"]
        if input_type == "none":
            if value is not None:
                # business-rules ignores it; a stray value only hides what the author meant.
                self.add(p, f"'{op['name']}' takes no value; write null, got {json.dumps(value)}")
            return
        if input_type == "numeric":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.add(p, f"'{op['name']}' on '{name}' needs a number, got {json.dumps(value)}")
            elif value != value or value in (float("inf"), float("-inf")):
                self.add(p, "the number must be finite")
            elif name in TIME_VARIABLES and abs(value) > MAX_TIME_HOURS:
                self.add(p, f"{value} hours is out of range for '{name}' (at most {MAX_TIME_HOURS:,} hours either way)")
            elif name in TIME_VARIABLES and op["name"] == "equal_to":
                # Time flows between ticks: "exactly 24 h" holds for microseconds that no tick meets.
                self.add(f"{p[:-len('.value')]}.operator",
                         f"'equal_to' on '{name}' would almost never fire (time moves on between ticks, so the"
                         f" value is exactly {value} only for an instant); use 'greater_than_or_equal_to'")
            return
        if input_type == "text":
            if not isinstance(value, str):
                self.add(p, f"'{op['name']}' on '{name}' needs a text value, got {json.dumps(value)}")
                return
            if op["name"] == "matches_regex":
                self.check_regex(value, p)
            elif name == "stage" and op["name"] == "equal_to" and value not in self.stage_ids:
                self.add(p, f"unknown stage '{value}'{_suggest(value, self.stage_ids)}")
            elif (name == "stage" and op["name"] == "equal_to_case_insensitive"
                  and value.lower() not in {s.lower() for s in self.stage_ids}):
                self.add(p, f"unknown stage '{value}'{_suggest(value.lower(), self.stage_ids)}")
            return
        if input_type == "select":
            options = var.get("options") or []
            if isinstance(value, list | dict) or value is None:
                self.add(p, f"'{op['name']}' on '{name}' needs one option, got {json.dumps(value)}")
            elif options and (not isinstance(value, str) or value.lower() not in {o.lower() for o in options}):
                self.add(p, f"'{value}' is not an option of '{name}' (options: {', '.join(options)}){_suggest(value, options)}")
            return
        # No variable is of business-rules' select_multiple type (custom fields are single-choice),
        # so its operators are never offered: check_leaf refuses them by the variable's type.

    def check_regex(self, pattern: str, p: str) -> None:
        if len(pattern) > MAX_REGEX_LENGTH:
            self.add(p, f"pattern is {len(pattern)} characters; the limit is {MAX_REGEX_LENGTH}")
            return
        try:
            # Evaluation's own options: a pattern accepted here runs there within the same memory.
            compiled = compile_pattern(pattern)
        except re2.error as exc:
            self.add(p, f"pattern {pattern!r} is not a valid regular expression: {_re2_reason(exc)}")
            return
        size = program_size(compiled)
        if size > MAX_PROGRAM:
            # RE2's DFA would not start within its memory: every match would run the slow NFA.
            self.add(p, f"pattern {pattern!r} is too large for RE2 to match quickly ({size:,} instructions; the"
                        f" limit is {MAX_PROGRAM:,}): use a smaller count in {{m,n}} repetitions, or + and *")
            return
        for difference in regex_differences(pattern):
            self.add(p, f"pattern {pattern!r}: {difference}")

    # -- actions -------------------------------------------------------------------------------
    def check_action(self, name: str, params: dict[str, Any], p: str) -> None:
        if name not in self.actions:
            self.add(f"{p}.name", f"'{name}' is not an action{_suggest(name, self.actions)}")
            return
        declared = {d["name"]: d for d in self.actions[name]["params"] or []}
        for key in params:
            if key not in declared:
                self.add(f"{p}.params.{key}", f"'{key}' is not a parameter of '{name}'{_suggest(key, declared)}"
                         f" (parameters: {', '.join(declared) or 'none'})")
        for key, d in declared.items():
            # null for an optional param means "the default", as the action itself treats it.
            if key not in params or (params[key] is None and not d.get("required", True)):
                if d.get("required", True):
                    self.add(f"{p}.params", f"'{name}' needs parameter '{key}'")
                continue
            self.check_param(name, d, params[key], f"{p}.params.{key}")

    def check_param(self, action: str, decl: dict[str, Any], value: Any, p: str) -> None:
        ftype = decl["fieldType"]
        if ftype == "numeric":
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                self.add(p, f"needs a number, got {json.dumps(value)}")
            elif value in (float("inf"), float("-inf")):
                # Infinity would pass the sign check and then crash the effect (timedelta overflow).
                self.add(p, "the number must be finite")
            elif value < 0:
                self.add(p, f"must not be negative, got {value}")
            elif decl["name"] == "due_in_hours" and value > MAX_DUE_IN_HOURS:
                self.add(p, f"is {value} hours; a task may be due at most {MAX_DUE_IN_HOURS} hours (ten years) ahead")
            return
        if not isinstance(value, str):
            self.add(p, f"needs a text value, got {json.dumps(value)}")
            return
        key = decl["name"]
        if ftype == "select":
            options = list(decl.get("options") or [])
            if action == "move_to_stage" and key == "to_stage":
                options = self.stage_ids
                what = "stage"
            elif action == "start_process" and key == "funnel":
                options = sorted(self.known_funnels)
                what = "funnel"
            else:
                what = "option"
            if value not in options:
                # The other funnel usually exists, just not where the validator looked.
                hint = (" — validate it together with that funnel's file, or import that funnel first"
                        if what == "funnel" else "")
                self.add(p, f"unknown {what} '{value}'{_suggest(value, options)} (choose one of: {', '.join(options)}){hint}")
            return
        if key in TEMPLATE_PARAMS.get(action, ()):
            if not value.strip():
                self.add(p, "text is empty")
                return
            try:
                names = placeholders(value)
            except TemplateError as exc:
                self.add(p, str(exc))
                return
            allowed = set(TEMPLATE_BUILTINS) | set(self.field_names)
            for n in names:
                if n not in allowed:
                    self.add(p, f"template names unknown field '{{{n}}}'{_suggest(n, allowed)}")

"""Rule-set names, patterns and JSON types under the validator: names and ids that fit their columns, patterns
RE2 and Python's ``re`` would read differently, ``equal_to`` on time variables, strict JSON types."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import re2

from engine.document.validate import (
    MAX_FUNNEL_NAME,
    MAX_ID_LENGTH,
    MAX_RULE_NAME,
    MAX_STAGE_NAME,
    regex_differences,
    validate_document,
)
from engine.errors import RuleSetInvalid
from engine.rules.variables import TIME_VARIABLES, SafeStringType

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = json.loads(
    (ROOT / "sample_rules" / "techflow.json").read_text(encoding="utf-8")
)
KNOWN = {"project_work"}
IDLE = 1  # "incoming: 24 h without activity"; its second condition is a time condition
I1 = "rules[1].conditions.all[1]"


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def problems_of(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(RuleSetInvalid) as info:
        validate_document(doc, known_funnels=KNOWN)
    return [(p.path, p.message) for p in info.value.problems]


def assert_problem(problems: list[tuple[str, str]], path: str, *fragments: str) -> None:
    hits = [m for p, m in problems if p == path and all(f in m for f in fragments)]
    assert hits, f"no problem at {path!r} containing {fragments!r}; got {problems}"


def with_pattern(pattern: str) -> dict[str, Any]:
    doc = base()
    doc["rules"][IDLE]["conditions"]["all"][1] = {
        "name": "source",
        "operator": "matches_regex",
        "value": pattern,
    }
    return doc


# -- 1.2: lengths that fit the storage columns ------------------------------------------------------
@pytest.mark.parametrize(
    "path,keys,limit,what",
    [
        ("rules[0].name", ["rules", 0, "name"], MAX_RULE_NAME, "a rule name"),
        ("name", ["name"], MAX_FUNNEL_NAME, "a funnel name"),
        ("stages[0].name", ["stages", 0, "name"], MAX_STAGE_NAME, "a stage name"),
        ("fields[0].label", ["fields", 0, "label"], 200, "a field label"),
    ],
    ids=["rule-name", "funnel-name", "stage-name", "field-label"],
)
def test_names_longer_than_their_column_are_refused(
    path: str, keys: list[Any], limit: int, what: str
) -> None:
    doc = base()
    target = doc
    for k in keys[:-1]:
        target = target[k]
    target[keys[-1]] = "Я" * limit
    validate_document(doc, known_funnels=KNOWN)  # exactly at the limit is fine
    target[keys[-1]] = "Я" * (limit + 1)
    assert_problem(
        problems_of(doc), path, f"{limit + 1} characters long", f"{what} may have at most {limit}"
    )


def test_an_option_longer_than_the_limit_is_refused() -> None:
    doc = base()
    select = next(i for i, f in enumerate(doc["fields"]) if f["type"] == "select")
    doc["fields"][select]["options"][0] = "o" * 201
    assert_problem(
        problems_of(doc), f"fields[{select}].options[0]", "an option may have at most 200"
    )


@pytest.mark.parametrize(
    "path,keys,what",
    [
        ("funnel", ["funnel"], "funnel id"),
        ("stages[5].id", ["stages", 5, "id"], "stage id"),
        ("rules[0].id", ["rules", 0, "id"], "rule id"),
        ("fields[0].name", ["fields", 0, "name"], "field name"),
    ],
    ids=["funnel-id", "stage-id", "rule-id", "field-name"],
)
def test_ids_longer_than_their_column_are_refused_with_a_length_message(
    path: str, keys: list[Any], what: str
) -> None:
    doc = base()
    target = doc
    for k in keys[:-1]:
        target = target[k]
    target[keys[-1]] = "a" * (MAX_ID_LENGTH + 1)
    assert_problem(
        problems_of(doc),
        path,
        f"{MAX_ID_LENGTH + 1} characters long",
        f"a {what} may have at most {MAX_ID_LENGTH}",
    )


def test_an_id_of_exactly_the_maximum_length_is_valid() -> None:
    doc = base()
    doc["rules"][0]["id"] = "r" * MAX_ID_LENGTH
    assert validate_document(doc, known_funnels=KNOWN).rules[0].id == "r" * MAX_ID_LENGTH


# -- 1.4: patterns RE2 and Python's re would read differently ---------------------------------------
@pytest.mark.parametrize(
    "pattern,escape,suggestion",
    [
        (r"^\w+$", r"\w", r"[\p{L}\p{Nd}_]"),
        (r"\W", r"\W", r"[^\p{L}\p{Nd}_]"),
        (r"^\d{3}", r"\d", r"\p{Nd}"),
        (r"\D", r"\D", r"\P{Nd}"),
        (r"a\sb", r"\s", r"\p{Z}"),
        (r"\S+", r"\S", r"\p{Z}"),
        (r"\bads\b", r"\b", r"[^\p{L}\p{Nd}_]"),
        (r"a\Bb", r"\B", r"[\p{L}\p{Nd}_]"),
        (r"[\d-]", r"\d", r"\p{Nd}"),
        (r"\\\w", r"\w", r"[\p{L}\p{Nd}_]"),  # an escaped backslash, then a real \w
    ],
    ids=["w", "W", "d", "D", "s", "S", "b", "B", "d-in-class", "after-escaped-backslash"],
)
def test_ascii_only_shorthands_are_refused_with_a_unicode_suggestion(
    pattern: str, escape: str, suggestion: str
) -> None:
    assert_problem(problems_of(with_pattern(pattern)), f"{I1}.value", escape, "ASCII", suggestion)


def test_a_posix_class_is_refused() -> None:
    assert_problem(
        problems_of(with_pattern("[[:alpha:]]+")), f"{I1}.value", "POSIX class", r"\p{L}"
    )


@pytest.mark.parametrize(
    "pattern",
    [r"\\w", r"\\d+", r"\Q\w\E", r"[\p{L}\p{Nd}_]+", r"^\p{Lu}", r"[]a]", "w+d"],
    ids=[
        "escaped-backslash-w",
        "escaped-backslash-d",
        "quoted",
        "unicode-word",
        "unicode-upper",
        "bracket-first",
        "plain-letters",
    ],
)
def test_literal_backslashes_and_unicode_classes_are_accepted(pattern: str) -> None:
    assert regex_differences(pattern) == []
    validate_document(with_pattern(pattern), known_funnels=KNOWN)


def test_the_unicode_suggestions_match_cyrillic_where_the_shorthands_did_not() -> None:
    assert SafeStringType("Олена").matches_regex(r"^\w+$") is False  # why \w is refused
    assert SafeStringType("Олена_2").matches_regex(r"^[\p{L}\p{Nd}_]+$") is True
    assert SafeStringType("ціна ٣").matches_regex(r"\p{Nd}") is True


# Patterns the validator accepts that Python's re also compiles: both engines must agree on Unicode text.
SHARED_PATTERNS = [
    "^Олена$",
    "(?i)^олена",
    "(?i)ПЕТРО",
    "[а-яіїєґ]+",
    "^[А-ЯІЇЄҐ]",
    "(?i)[а-я]+ [а-я]+",
    "Ґ|ґ",
    ".",
    "^.{5}$",
    "о+",
    "(?s)а.б",
    "(?m)^П",
    "ї$",
    "[^а-я]",
    "x*",
    "(Ол|Пе)(ена|тро)",
    "(?i)straße",
    "é",
    "[0-9]{2}",
]
TEXTS = [
    "Олена",
    "олена",
    "ОЛЕНА",
    "Петро Іваненко",
    "Ґанок їжак",
    "ціна 42",
    "a\nб",
    "Straße",
    "café",
    "",
    "ї",
    "x",
    "ОлЕнА\nПетро",
]


@pytest.mark.parametrize("pattern", SHARED_PATTERNS)
def test_accepted_patterns_match_cyrillic_text_like_pythons_re(pattern: str) -> None:
    assert regex_differences(pattern) == []
    validate_document(with_pattern(pattern), known_funnels=KNOWN)
    for text in TEXTS:
        expected = re.search(pattern, text) is not None
        assert SafeStringType(text).matches_regex(pattern) is expected, (pattern, text)
        assert (re2.search(pattern, text) is not None) is expected, (pattern, text)


# -- 1.5: equal_to on a time variable ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TIME_VARIABLES))
def test_equal_to_on_a_time_variable_is_refused_with_a_suggestion(name: str) -> None:
    doc = base()
    doc["rules"][IDLE]["conditions"]["all"][1] = {"name": name, "operator": "equal_to", "value": 24}
    assert_problem(
        problems_of(doc), f"{I1}.operator", f"'equal_to' on '{name}'", "greater_than_or_equal_to"
    )


def test_equal_to_on_other_numeric_variables_stays_valid() -> None:
    doc = base()
    doc["rules"][IDLE]["conditions"]["all"][1] = {
        "name": "amount",
        "operator": "equal_to",
        "value": 1000,
    }
    validate_document(doc, known_funnels=KNOWN)


# -- section 3: strict JSON types ------------------------------------------------------------------
@pytest.mark.parametrize(
    "value", ["yes", "true", 1, 0, None], ids=["yes", "true-text", "one", "zero", "null"]
)
def test_enabled_must_be_a_json_boolean(value: Any) -> None:
    doc = base()
    doc["rules"][0]["enabled"] = value
    assert_problem(problems_of(doc), "rules[0].enabled", "valid boolean")


@pytest.mark.parametrize("value", ["10", True, None], ids=["text", "boolean", "null"])
def test_positions_must_be_json_numbers(value: Any) -> None:
    doc = base()
    doc["stages"][0]["position"] = {"x": value, "y": 0}
    assert_problem(problems_of(doc), "stages[0].position.x", "valid number")


def test_integer_positions_are_still_numbers() -> None:
    doc = base()
    doc["stages"][0]["position"] = {"x": 10, "y": 2.5}
    assert validate_document(doc, known_funnels=KNOWN).stages[0].position.x == 10.0


@pytest.mark.parametrize("value", [5, 5.0, True], ids=["int", "float", "boolean"])
def test_names_must_be_json_text(value: Any) -> None:
    doc = base()
    doc["rules"][0]["name"] = value
    assert_problem(problems_of(doc), "rules[0].name", "valid string")


def test_from_underscore_is_not_an_alias_for_from() -> None:
    doc = base()
    doc["transitions"][0]["from_"] = doc["transitions"][0].pop("from")
    problems = problems_of(doc)
    assert_problem(problems, "transitions[0].from_", "unknown key 'from_'")
    assert_problem(problems, "transitions[0].from", "required key 'from' is missing")


def test_every_sample_rule_set_is_valid_under_the_stricter_checks() -> None:
    docs = {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in (ROOT / "sample_rules").glob("*.json")
    }
    for doc in docs.values():
        validate_document(doc, known_funnels=set(docs))
    assert len(docs) >= 2

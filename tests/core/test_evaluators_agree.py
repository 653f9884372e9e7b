"""Differential test: compiled closures, vectorised masks and business-rules decide every (rule, deal) alike.

Hypothesis draws random valid rule sets (nested all/any over every variable type and operator that
applies to Conveyor's variables, thresholds that sit on the epsilon edges) and random deals whose
values sit on the same edges; business-rules' ``check_conditions_recursively`` is the reference.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from business_rules.engine import check_conditions_recursively
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.document.validate import validate_document
from engine.rules.deal import DealState
from engine.rules.evaluators.compiled import compile_ruleset
from engine.rules.evaluators.reference import evaluate
from engine.rules.evaluators.vectorized import deals_frame, rule_masks
from engine.rules.variables import variables_class
from tests.support.signals import with_signals

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STAGES = ["incoming", "qualification", "proposal", "won"]
TIER_OPTIONS = ["Gold", "silver", "BRONZE"]
FIELDS = [
    {"name": "note", "type": "text"},
    {"name": "score", "type": "numeric"},
    {"name": "vip", "type": "boolean"},
    {"name": "tier", "type": "select", "options": TIER_OPTIONS},
]
EVENTS = [
    {"name": "proposal_attached", "by": "manager"},
    {"name": "proposal_opened"},
    {"name": "client_replied"},
    {"name": "payment_received", "fields": {"amount": "score"}},
]
TIME_VARS = [
    "hours_in_stage",
    "hours_since_last_activity",
    "hours_since_created",
    "hours_since_proposal_attached",
    "hours_since_proposal_opened",
    "hours_since_payment_received",
]
#: Every time variable's twin on the funnel's calendar (``CALENDARS``, one drawn per rule set).
WORKING_TIME_VARS = [f"working_{name}" for name in TIME_VARS]
TIME_VARS += WORKING_TIME_VARS
NUMERIC_VARS = [*TIME_VARS, "amount", "score"]
#: Two calendars: whole working weekdays in Kyiv (NOW, 11:00 on a Monday, sits 11 h into working
#: time, so thresholds of 1 or 1.5 h meet their epsilon edges exactly as calendar hours do, and
#: 24 or 48 h reach back across the weekend), and office hours with a lunch break and a holiday.
CALENDARS = [
    {
        "zone": "Europe/Kyiv",
        "week": {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": {"country": "UA", "dates": ["2026-02-23"]},
    },
    {
        "zone": "America/New_York",
        "week": {
            **{d: [["09:00", "12:30"], ["13:30", "18:00"]] for d in ("mon", "tue", "wed", "thu")},
            "fri": [["09:00", "15:00"]],
            "sun": [["22:00", "24:00"]],
        },
        "holidays": {"country": "US", "dates": ["2026-02-27"]},
    },
]
BOOLEAN_VARS = [
    "has_manager",
    "proposal_attached",
    "proposal_opened",
    "client_replied",
    "payment_received",
    "vip",
]
NUMERIC_OPS = [
    "equal_to",
    "greater_than",
    "greater_than_or_equal_to",
    "less_than",
    "less_than_or_equal_to",
]
STRING_OPS = [
    "equal_to",
    "equal_to_case_insensitive",
    "starts_with",
    "ends_with",
    "contains",
    "matches_regex",
    "non_empty",
]
TEXTS = [
    "",
    "a",
    "A",
    "ab",
    "Ab",
    "qual",
    "Qualification",
    "proposal",
    "ß",
    "İstanbul",
    "x y",
    "Олена",
    "олена",
    "Ґанок їжак",
    "Петро 42",
]
REGEXES = [
    "^a",
    "b$",
    "a|B",
    "[0-9]+",
    ".*",
    "(?i)qual",
    "^$",
    "al",
    "^pro.*al$",
    "(?i)^олена$",
    r"^[\p{L}\p{Nd}_]+$",
    r"\p{Lu}",
    "[а-яіїєґ]+",
]

# Thresholds and values meet on the edges business-rules draws with EPSILON = 1e-6.
BASES = [0, 1, 24, 48, 1.5, 100.25, -3, 1e6]
NUDGES = [0.0, 1e-7, -1e-7, 1e-6, -1e-6, 2e-6, -2e-6, 1e-6 + 1e-13, -1e-6 - 1e-13, 5e-7, 0.1]


def _around(base: float, nudge: float) -> float:
    return base + nudge


numbers = st.builds(_around, st.sampled_from(BASES), st.sampled_from(NUDGES))
thresholds = st.one_of(st.sampled_from(BASES), numbers, st.integers(-5, 60))
#: The validator bounds working-hour thresholds at 100,000 (MAX_WORKING_HOURS).
working_thresholds = thresholds.filter(lambda v: abs(v) <= 100_000)


def _leaf(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["numeric", "numeric", "string", "boolean", "select"]))
    if kind == "numeric":
        name = draw(st.sampled_from(NUMERIC_VARS))
        # The validator refuses equal_to on "hours since" variables (it would hold only for an instant).
        ops = [o for o in NUMERIC_OPS if o != "equal_to"] if name in TIME_VARS else NUMERIC_OPS
        bound = working_thresholds if name in WORKING_TIME_VARS else thresholds
        return {"name": name, "operator": draw(st.sampled_from(ops)), "value": draw(bound)}
    if kind == "boolean":
        return {
            "name": draw(st.sampled_from(BOOLEAN_VARS)),
            "operator": draw(st.sampled_from(["is_true", "is_false"])),
            "value": None,
        }
    if kind == "select":
        return {
            "name": "tier",
            "operator": draw(st.sampled_from(["contains", "does_not_contain"])),
            "value": draw(st.sampled_from(["gold", "Gold", "SILVER", "bronze"])),
        }
    name = draw(st.sampled_from(["stage", "note"]))
    op = draw(st.sampled_from(STRING_OPS))
    if op == "matches_regex":
        value: Any = draw(st.sampled_from(REGEXES))
    elif op == "non_empty":
        value = None
    elif name == "stage" and op in ("equal_to", "equal_to_case_insensitive"):
        value = draw(st.sampled_from(STAGES))  # the validator only accepts stage ids here
    else:
        value = draw(st.sampled_from(TEXTS))
    return {"name": name, "operator": op, "value": value}


@st.composite
def trees(draw: Any, depth: int = 0) -> dict[str, Any]:
    if depth >= 3 or draw(st.integers(0, 2)) == 0:
        return _leaf(draw)
    kind = draw(st.sampled_from(["all", "any"]))
    return {kind: [draw(trees(depth + 1)) for _ in range(draw(st.integers(1, 4)))]}


@st.composite
def rulesets(draw: Any) -> Any:
    rules = [
        {
            "id": f"r{i}",
            "conditions": draw(trees()),
            "actions": [{"name": "assign_manager", "params": {}}],
            "repeat": draw(
                st.sampled_from(["once_per_stage_visit", "once_per_deal", "after_each_activity"])
            ),
        }
        for i in range(draw(st.integers(1, 6)))
    ]
    doc = {
        "format": "conveyor.ruleset/1",
        "funnel": "prop",
        "name": "Property funnel",
        "fields": FIELDS,
        "events": EVENTS,
        "stages": [
            {"id": s, "name": s.title(), "kind": "won" if s == "won" else "open"} for s in STAGES
        ],
        "rules": rules,
        "calendar": draw(st.sampled_from(CALENDARS)),
    }
    return validate_document(doc)


def _ago(hours: float) -> datetime:
    return NOW - timedelta(microseconds=round(hours * 3_600_000_000))


maybe_instant = st.one_of(st.none(), st.builds(_ago, numbers))


def deals() -> st.SearchStrategy[DealState]:
    """Deals with every declared event maybe happened, in the current stage visit or the one before."""
    return with_signals(_plain_deals(), maybe_instant, tuple(e["name"] for e in EVENTS))


@st.composite
def _plain_deals(draw: Any) -> DealState:
    created = draw(st.builds(_ago, numbers))
    return DealState(
        id=1,
        key="D-1",
        funnel="prop",
        stage=draw(st.sampled_from(STAGES)),
        created_at=created,
        stage_entered_at=draw(st.builds(_ago, numbers)),
        stage_visit=draw(st.integers(1, 3)),
        activity_seq=draw(st.integers(0, 3)),
        amount=draw(st.one_of(st.none(), numbers)),
        manager_id=draw(st.sampled_from([None, 1])),
        last_activity_at=draw(maybe_instant),
        fields={
            "note": draw(st.sampled_from([None, *TEXTS])),
            "score": draw(st.one_of(st.none(), numbers)),
            "vip": draw(st.sampled_from([None, True, False])),
            "tier": draw(st.sampled_from([None, "", "Gold", "gold", "SILVER", "BRONZE"])),
        },
    )


@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rs=rulesets(), sample=st.lists(deals(), min_size=1, max_size=8))
def test_compiled_vectorised_and_business_rules_agree_on_every_rule_and_deal(
    rs: Any, sample: list[DealState]
) -> None:
    compiled = compile_ruleset(rs)
    variables = variables_class(rs)
    masks = rule_masks(rs, deals_frame(sample, rs), NOW)
    for i, deal in enumerate(sample):
        values = compiled.values(deal, NOW)
        for rule in compiled.rules:
            expected = bool(
                check_conditions_recursively(
                    rule.rule.business_rule()["conditions"], variables(deal, NOW)
                )
            )
            assert bool(rule.test(values)) == expected, (rule.rule.id, i, "compiled")
            assert bool(masks[rule.rule.id][i]) == expected, (rule.rule.id, i, "vectorised")
    # The full decisions (occurrence, values read, planned actions, due time) match the reference too.
    for deal in sample[:2]:
        ref = evaluate(rs, deal, NOW)
        got = compiled.evaluate(deal, NOW)
        assert [(d.rule.id, d.occurrence, d.values, d.actions, d.due_at) for d in got] == [
            (d.rule.id, d.occurrence, d.values, d.actions, d.due_at) for d in ref
        ]

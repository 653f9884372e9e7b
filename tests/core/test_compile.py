"""The compiled rule set: business-rules' operator semantics at the edges, decisions, due instants."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from business_rules.operators import NumericType, SelectType

from engine.document.validate import validate_document
from engine.rules.deal import DealState
from engine.rules.evaluators.compiled import (
    compile_ruleset,
    first_true_instant,
    numeric_test,
    select_test,
    string_test,
)
from engine.rules.evaluators.numeric import exact_numeric
from engine.rules.evaluators.reference import evaluate
from engine.rules.variables import SafeStringType
from tests.support.signals import signals

SAMPLE_RULES = Path(__file__).resolve().parents[2] / "sample_rules"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OPS = ["equal_to", "greater_than", "greater_than_or_equal_to", "less_than", "less_than_or_equal_to"]


def techflow():
    doc = json.loads((SAMPLE_RULES / "techflow.json").read_text(encoding="utf-8"))
    return validate_document(doc, known_funnels=["project_work"])


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    "value,threshold",
    [
        (24.0, 24),
        (24.0 - 1e-6, 24),
        (24.0 - 1e-6 - 1e-13, 24),
        (24.0 + 1e-6, 24),
        (24.0 + 1e-6 + 1e-12, 24),
        (0.1 + 0.2, 0.3),
        (1e-6, 0),
        (-1e-6, 0),
        (2e-6, 1e-6),
        (1e6 + 1e-6, 1e6),
        (0.0, 2**60),
        (3.0, 2**60),
    ],
    ids=lambda v: repr(v),
)
def test_numeric_operators_decide_like_business_rules_decimal_epsilon(
    op: str, value: float, threshold: float
) -> None:
    expected = bool(getattr(NumericType(value), op)(threshold))
    assert numeric_test(op, threshold)(value) is expected
    assert exact_numeric(op, value, threshold) is expected


def test_values_within_epsilon_are_equal_and_not_greater() -> None:
    assert numeric_test("equal_to", 24)(24 + 9e-7)
    assert not numeric_test("greater_than", 24)(24 + 9e-7)
    assert numeric_test("greater_than_or_equal_to", 24)(24 - 9e-7)
    assert not numeric_test("less_than", 24)(24 - 9e-7)


@pytest.mark.parametrize(
    "op,value",
    [
        ("equal_to", "Qual"),
        ("equal_to_case_insensitive", "QUAL"),
        ("starts_with", "Q"),
        ("ends_with", "al"),
        ("contains", "ua"),
        ("matches_regex", "^q"),
        ("matches_regex", "(?i)^q"),
        ("non_empty", None),
        ("equal_to", None),
        ("contains", ""),
    ],
)
@pytest.mark.parametrize("actual", ["Qual", "qual", "", "İstanbul"])
def test_string_operators_match_conveyors_re2_string_type(
    op: str, value: str | None, actual: str
) -> None:
    method = getattr(SafeStringType(actual), op)
    expected = bool(method() if op == "non_empty" else method(value))
    assert bool(string_test(op, value)(actual)) is expected


@pytest.mark.parametrize("op", ["contains", "does_not_contain"])
@pytest.mark.parametrize("actual", [[], ["Gold"], ["gold"], ["SILVER"], [1]])
@pytest.mark.parametrize("value", ["gold", "Silver", 1])
def test_select_operators_are_case_insensitive_like_business_rules(
    op: str, actual: list, value: object
) -> None:
    assert select_test(op, value)(actual) is getattr(SelectType(actual), op)(value)


def _deal(**kw: object) -> DealState:
    base = dict(
        id=7,
        key="D-7",
        funnel="techflow",
        stage="qualification",
        created_at=NOW - timedelta(hours=50),
        stage_entered_at=NOW - timedelta(hours=3),
        manager_id=1,
        fields={"budget": "yes"},
    )
    base.update(kw)
    return DealState(**base)  # type: ignore[arg-type]


def test_compiled_decisions_equal_the_reference_decisions_for_the_sample_funnel() -> None:
    rs = techflow()
    compiled = compile_ruleset(rs)
    deals = [
        _deal(),
        _deal(stage_entered_at=NOW - timedelta(hours=25)),
        _deal(stage="incoming", last_activity_at=NOW - timedelta(hours=30)),
        _deal(
            stage="proposal",
            signals=signals(proposal_attached=NOW - timedelta(hours=49)),
            stage_entered_at=NOW - timedelta(hours=49),
        ),
        _deal(stage="qualification", fields={"need": "NO"}),
        _deal(stage="contract", signals=signals(payment_received=NOW)),
    ]
    for deal in deals:
        ref = evaluate(rs, deal, NOW, skip={("assign_new_lead", "visit:1")})
        got = compiled.evaluate(deal, NOW, skip={("assign_new_lead", "visit:1")})
        assert [(d.rule.id, d.occurrence, d.values, d.actions, d.due_at) for d in got] == [
            (d.rule.id, d.occurrence, d.values, d.actions, d.due_at) for d in ref
        ]
    assert [d.rule.id for d in compiled.evaluate(deals[1], NOW)] == ["qualification_timeout"]


def test_compile_is_cached_per_rule_set_object() -> None:
    rs = techflow()
    assert compile_ruleset(rs) is compile_ruleset(rs)
    assert compile_ruleset(techflow()) is not compile_ruleset(rs)


def test_next_due_is_the_first_microsecond_a_time_threshold_holds() -> None:
    compiled = compile_ruleset(techflow())
    deal = _deal()  # qualification, entered 3 h ago, authority and need undecided
    due = compiled.next_due(deal, NOW, fired=set())
    # hours_in_stage >= 24 holds from 24 h minus business-rules' epsilon (1e-6 h = 3.6 ms).
    assert due == deal.stage_entered_at + timedelta(hours=24) - timedelta(microseconds=3600)
    assert [d.rule.id for d in compiled.evaluate(deal, due)] == ["qualification_timeout"]
    assert compiled.evaluate(deal, due - timedelta(microseconds=1)) == []


def test_next_due_skips_fired_rules_and_rules_that_time_alone_cannot_satisfy() -> None:
    compiled = compile_ruleset(techflow())
    deal = _deal()
    assert compiled.next_due(deal, NOW, fired={("qualification_timeout", "visit:1")}) is None
    decided = _deal(fields={"budget": "yes", "authority": "yes", "need": "yes"})
    assert (
        compiled.next_due(decided, NOW, fired=set()) is None
    )  # nothing undecided: timeout cannot fire
    assert compiled.next_due(_deal(stage="paid"), NOW, fired=set()) is None


def test_next_due_for_an_after_each_activity_rule_follows_the_last_activity() -> None:
    compiled = compile_ruleset(techflow())
    deal = _deal(stage="incoming", last_activity_at=NOW - timedelta(hours=1), activity_seq=2)
    fired = {("assign_new_lead", "visit:1"), ("incoming_idle_24h", "visit:1/activity:1")}
    due = compiled.next_due(deal, NOW, fired=fired)
    assert due == deal.last_activity_at + timedelta(hours=24) - timedelta(microseconds=3600)


def test_first_true_instant_handles_far_thresholds_and_never() -> None:
    anchor = NOW - timedelta(hours=1)
    ge_1e4 = numeric_test("greater_than_or_equal_to", 10_000)
    at = first_true_instant(ge_1e4, anchor, NOW, 10_000)
    assert at is not None and ge_1e4((at - anchor).total_seconds() / 3600.0)
    before = at - timedelta(microseconds=1)
    assert not ge_1e4((before - anchor).total_seconds() / 3600.0)
    assert first_true_instant(numeric_test("greater_than", 1e12), anchor, NOW, 1e12) is None

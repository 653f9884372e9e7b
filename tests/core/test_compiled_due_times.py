"""Compiled due times (``compile_due_time``, closures built once per rule) equal the walked ones
(``due_time``, the condition tree walked per deal): on the sample rules and on generated trees,
in calendar and in working time, errors included."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.document.conditions import AllOf, AnyOf, Condition
from engine.document.ruleset import RuleSet
from engine.document.validate import validate_document
from engine.rules.evaluators.base import RISING_OPS, compile_due_time, due_time
from engine.rules.evaluators.compiled import compile_ruleset
from engine.rules.registry import time_variables, working_calendars
from tests.conftest import SAMPLE_RULES
from tests.core.test_run_all_equivalence import TECHFLOW_DEALS, working_time_techflow


def _ruleset(working: bool) -> RuleSet:
    doc = json.loads((SAMPLE_RULES / "techflow.json").read_text(encoding="utf-8"))
    if working:
        doc = working_time_techflow(doc)
    return validate_document(doc, known_funnels=["techflow", "project_work"])


RULESETS = {"calendar": _ruleset(False), "working": _ruleset(True)}


def outcome(f: Any, *args: Any) -> Any:
    """What a call returns, or the error it raises (type and text)."""
    try:
        return ("value", f(*args))
    except (TypeError, ValueError, OverflowError) as exc:  # part of what must be equal
        return ("error", type(exc), str(exc))


@pytest.mark.parametrize("which", sorted(RULESETS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deal=TECHFLOW_DEALS)
def test_compiled_due_times_of_the_sample_rules_equal_the_walked_ones(which, deal):
    rs = RULESETS[which]
    compiled = compile_ruleset(rs)
    assert compiled.rules
    for r in compiled.rules:
        walked = due_time(r.rule.conditions, deal, compiled.anchors, compiled.calendars)
        assert r.due(deal) == walked, (r.rule.id, deal)


_NAMES = sorted(time_variables(RULESETS["working"])) + ["stage", "amount"]
_VALUES = st.one_of(
    st.integers(-48, 500),
    st.floats(-1e3, 1e6, allow_nan=False),
    st.sampled_from([0, 24, 1e20, float("inf"), float("nan"), None, "24", "soon"]),
)
_LEAVES = st.builds(
    Condition,
    name=st.sampled_from(_NAMES),
    operator=st.sampled_from([*RISING_OPS, "less_than", "equal_to_case_insensitive"]),
    value=_VALUES,
)
TREES = st.recursive(
    _LEAVES,
    lambda kids: st.one_of(
        st.builds(AllOf, all=st.lists(kids, max_size=4)),
        st.builds(AnyOf, any=st.lists(kids, max_size=4)),
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("which", sorted(RULESETS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREES, deal=TECHFLOW_DEALS)
def test_compiled_due_times_of_generated_trees_equal_the_walked_ones(which, tree, deal):
    rs = RULESETS[which]
    anchors, calendars = time_variables(rs), working_calendars(rs)
    compiled = compile_due_time(tree, anchors, calendars)
    assert outcome(compiled, deal) == outcome(due_time, tree, deal, anchors, calendars)


def test_a_tree_without_time_leaves_is_never_due():
    tree = AllOf(all=[Condition(name="stage", operator="equal_to", value="incoming")])
    assert compile_due_time(tree)(object()) is None
    assert compile_due_time(AnyOf(any=[]))(object()) is None


@settings(max_examples=50, deadline=None)
@given(deal=TECHFLOW_DEALS)
def test_the_default_anchors_are_the_built_in_time_variables(deal):
    tree = Condition(name="hours_in_stage", operator="greater_than_or_equal_to", value=24)
    assert compile_due_time(tree)(deal) == due_time(tree, deal)
    assert due_time(tree, deal) == deal.stage_entered_at + timedelta(hours=24)

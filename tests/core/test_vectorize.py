"""Vectorised masks: the same decisions as the compiled path and business-rules, over whole frames."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from business_rules.operators import NumericType

from benchmarks import bench
from engine.document.validate import validate_document
from engine.rules.deal import DealState
from engine.rules.evaluators.compiled import compile_ruleset
from engine.rules.evaluators.vectorized import deals_frame, match_counts, numeric_mask, rule_masks

SAMPLE_RULES = Path(__file__).resolve().parents[2] / "sample_rules"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def techflow():
    doc = json.loads((SAMPLE_RULES / "techflow.json").read_text(encoding="utf-8"))
    return validate_document(doc, known_funnels=["project_work"])


@pytest.mark.parametrize(
    "op",
    ["equal_to", "greater_than", "greater_than_or_equal_to", "less_than", "less_than_or_equal_to"],
)
def test_numeric_mask_settles_epsilon_edges_with_business_rules_decimals(op: str) -> None:
    xs = np.array(
        [24.0, 24 - 1e-6, 24 - 1e-6 - 1e-13, 24 + 1e-6, 24 + 1e-6 + 1e-13, 23.0, 25.0, 0.0]
    )
    expected = [bool(getattr(NumericType(float(x)), op)(24)) for x in xs]
    assert numeric_mask(xs, op, 24).tolist() == expected


def test_masks_over_the_benchmark_data_set_equal_the_compiled_decisions() -> None:
    rs = techflow()
    cols = bench.synthetic_deals(3000, seed=7)
    masks = rule_masks(rs, bench.deals_frame(cols), bench.NOW)
    compiled = compile_ruleset(rs)
    for i, deal in enumerate(bench.deal_states(cols, 3000)):
        fired = {r.rule.id for r in compiled.matching(deal, bench.NOW)}
        assert {rule_id for rule_id, m in masks.items() if m[i]} == fired, i
    assert sum(int(m.sum()) for m in masks.values()) > 500  # the data set exercises the rules


def test_deals_frame_from_deal_states_counts_matches_per_rule() -> None:
    rs = techflow()
    base = dict(
        funnel="techflow",
        created_at=NOW - timedelta(hours=80),
        stage_entered_at=NOW - timedelta(hours=30),
    )
    deals = [
        DealState(id=1, key="a", stage="qualification", fields={"budget": "yes"}, **base),
        DealState(id=2, key="b", stage="qualification", fields={"budget": "no"}, **base),
        DealState(
            id=3, key="c", stage="incoming", last_activity_at=NOW - timedelta(hours=2), **base
        ),
        DealState(id=4, key="d", stage="incoming", **base),
    ]
    counts = match_counts(rs, deals_frame(deals, rs), NOW)
    assert counts["qualification_timeout"] == 2  # authority and need are undecided in both
    assert counts["qualification_no"] == 1
    assert counts["assign_new_lead"] == 2
    assert counts["incoming_idle_24h"] == 1  # only d: no activity, created 80 h ago
    assert counts["payment_to_paid"] == 0

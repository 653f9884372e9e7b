"""The bulk path an import takes (``evaluators.bulk.decide_many``) decides exactly as the compiled
evaluator deal by deal: the same decisions and the same next due instant, over generated rule sets
(every operator, nested all/any, working-time calendars) and deals on the epsilon edges."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rules.deal import DealState
from engine.rules.evaluators.bulk import decide_many
from engine.rules.evaluators.compiled import compile_ruleset
from tests.core.test_evaluators_agree import NOW, STAGES, deals, rulesets


def _shape(decisions: list[Any]) -> list[tuple[Any, ...]]:
    return [(d.rule.id, d.occurrence, d.values, d.actions, d.due_at) for d in decisions]


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rs=rulesets(), sample=st.lists(deals(), min_size=1, max_size=12))
def test_bulk_decisions_and_due_times_equal_the_compiled_ones_deal_by_deal(
    rs: Any, sample: list[DealState]
) -> None:
    compiled = compile_ruleset(rs)
    for deal in sample:
        deal.closed = deal.stage == "won"  # type: ignore[attr-defined]
    decisions, dues = decide_many(compiled, sample, NOW)
    for i, deal in enumerate(sample):
        expected = compiled.evaluate(deal, NOW)
        assert _shape(decisions[i]) == _shape(expected), i
        done = {(d.rule.id, d.occurrence) for d in expected}
        due = None if deal.closed else compiled.next_due(deal, NOW, done)  # type: ignore[attr-defined]
        assert dues[i] == due, i


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(rs=rulesets())
def test_new_deals_sharing_their_anchors_get_the_compiled_due_times(rs: Any) -> None:
    """Many new deals (an import's case) fall in a few groups; each group's instant is everyone's."""
    compiled = compile_ruleset(rs)
    sample = [
        DealState(
            id=i,
            key=f"K{i}",
            funnel="prop",
            stage=STAGES[i % len(STAGES)],
            created_at=NOW,
            stage_entered_at=NOW,
            fields={"score": float(i % 7), "vip": bool(i % 2), "tier": ["Gold", None][i % 2]},
        )
        for i in range(40)
    ]
    for deal in sample:
        deal.closed = deal.stage == "won"  # type: ignore[attr-defined]
    decisions, dues = decide_many(compiled, sample, NOW)
    for i, deal in enumerate(sample):
        expected = compiled.evaluate(deal, NOW)
        assert _shape(decisions[i]) == _shape(expected)
        done = {(d.rule.id, d.occurrence) for d in expected}
        assert dues[i] == (None if deal.closed else compiled.next_due(deal, NOW, done))  # type: ignore[attr-defined]

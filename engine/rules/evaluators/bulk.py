"""Decisions and next due instants for many deals at once (a bulk import): vectorised, compiled where needed.

``decide_many`` gives, for each deal, exactly what ``CompiledRuleSet.evaluate`` and ``next_due``
would (the decisions ``Evaluation.decide`` records, and the deal's ``next_due_at``): which rules
hold comes from ``vectorized``'s masks, one numpy pass per distinct leaf; a rule with a leaf the
masks cannot test is decided by its compiled closure, deal by deal. Due times are computed once per
group of deals that share every input of ``next_due`` (the rules that could still turn true with
time alone, and each time variable's anchor), not once per deal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from engine.rules.actions import PlannedAction
from engine.rules.evaluators.base import Decision, occurrence
from engine.rules.evaluators.compiled import CompiledRuleSet
from engine.rules.evaluators.vectorized import anchor_micros, deals_frame, decision_masks

__all__ = ["decide_many"]


def decide_many(
    compiled: CompiledRuleSet, deals: Sequence[Any], now: datetime
) -> tuple[list[list[Decision]], list[datetime | None]]:
    """(decisions, next due instant) of each of ``deals`` at ``now``, none of which has fired yet.

    ``deals``: ``DealState``-like objects (the attributes the registry names, and ``closed``). The
    same as ``compiled.evaluate(deal, now)`` and ``compiled.next_due(deal, now, done)`` for each,
    with ``done`` what that evaluation decided and no next due instant for a closed deal.
    """
    n = len(deals)
    decisions: list[list[Decision]] = [[] for _ in range(n)]
    if n == 0 or not compiled.rules:
        return decisions, [None] * n
    frame = deals_frame(deals, compiled.ruleset)
    exact, optimistic = decision_masks(compiled, frame, now)
    values: dict[int, Any] = {}

    def values_of(i: int) -> Any:
        found = values.get(i)
        if found is None:
            found = values[i] = compiled.values(deals[i], now)
        return found

    holds: dict[str, np.ndarray] = {}
    for r in compiled.rules:
        mask = exact[r.rule.id]
        if mask is None:  # no vectorised test for one of its leaves: its closure decides
            mask = np.fromiter((r.test(values_of(i)) for i in range(n)), dtype=bool, count=n)
        holds[r.rule.id] = mask
        for i in np.flatnonzero(mask).tolist():
            deal, v = deals[i], values_of(i)
            decisions[i].append(
                Decision(
                    rule=r.rule,
                    occurrence=occurrence(r.rule, deal),
                    values={name: v[name] for name in r.names},
                    actions=[PlannedAction(a.name, dict(a.params)) for a in r.actions],
                    due_at=r.due(deal) if r.time_leaves else None,
                )
            )
    anchors = anchor_micros(compiled, frame)
    return decisions, _next_due(compiled, deals, now, decisions, holds, optimistic, anchors)


def _next_due(
    compiled: CompiledRuleSet,
    deals: Sequence[Any],
    now: datetime,
    decisions: list[list[Decision]],
    holds: dict[str, np.ndarray],
    optimistic: dict[str, np.ndarray | None],
    anchors: dict[str, np.ndarray],
) -> list[datetime | None]:
    n = len(deals)
    timed = [r for r in compiled.rules if r.time_leaves]
    out: list[datetime | None] = [None] * n
    if not timed:
        return out
    if any(optimistic[r.rule.id] is None for r in timed):  # no masks: every deal on its own
        for i, deal in enumerate(deals):
            if not deal.closed:
                done = {(d.rule.id, d.occurrence) for d in decisions[i]}
                out[i] = compiled.next_due(deal, now, done)
        return out
    # A rule that just fired is done for this occurrence; one that could still turn true with time
    # alone is a candidate. next_due reads nothing else but the time variables' anchors.
    candidates = np.column_stack([optimistic[r.rule.id] & ~holds[r.rule.id] for r in timed])
    closed = np.fromiter((bool(d.closed) for d in deals), dtype=bool, count=n)
    waiting = np.flatnonzero(candidates.any(axis=1) & ~closed)
    if not len(waiting):
        return out
    # Deals alike in every input of next_due (the candidates and each anchor) share its answer.
    inputs = np.column_stack(
        [candidates.astype(np.int64), *(anchors[name] for name in compiled.time_names)]
    )[waiting]
    _keys, first, group = np.unique(inputs, axis=0, return_index=True, return_inverse=True)
    answers = []
    for i in waiting[first].tolist():
        answers.append(
            compiled.next_due(deals[i], now, {(d.rule.id, d.occurrence) for d in decisions[i]})
        )
    for i, g in zip(waiting.tolist(), np.asarray(group).reshape(-1).tolist(), strict=True):
        out[i] = answers[g]
    return out

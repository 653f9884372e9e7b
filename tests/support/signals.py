"""Declared events on made-up deals: the ``signals`` summary a deal row carries, built as the engine does."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from hypothesis import strategies as st

from engine.rules.deal import DealState
from engine.rules.registry import with_event

#: The sample funnel's declared events (sample_rules/techflow.json).
TECHFLOW_EVENTS = ("proposal_attached", "proposal_opened", "client_replied", "payment_received")


def signals(visit: int = 1, **happened: datetime | None) -> dict:
    """``signals(proposal_opened=t)``: each given event happened at its instant, in stage visit ``visit``."""
    out: dict = {}
    for name, at in happened.items():
        if at is not None:
            out = with_event(out, name, at, visit)
    return out


def with_signals(
    deals: st.SearchStrategy[DealState],
    instants: st.SearchStrategy[datetime | None],
    names: tuple[str, ...] = TECHFLOW_EVENTS,
) -> st.SearchStrategy[DealState]:
    """``deals`` with each event of ``names`` maybe happened: in the deal's current visit or an earlier one."""

    def add(deal: DealState) -> st.SearchStrategy[DealState]:
        visits = st.sampled_from(sorted({deal.stage_visit, max(1, deal.stage_visit - 1)}))
        entry = st.tuples(instants, visits)
        return st.fixed_dictionaries({n: entry for n in names}).map(
            lambda drawn: replace(deal, signals=_summary(drawn))
        )

    return deals.flatmap(add)


def _summary(drawn: dict[str, tuple[datetime | None, int]]) -> dict:
    out: dict = {}
    for name, (at, visit) in drawn.items():
        if at is not None:
            out = with_event(out, name, at, visit)
    return out

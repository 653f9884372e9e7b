"""Ticks: evaluate the deals whose time conditions fell due, in batches, each deal isolated.

Only deals with ``next_due_at <= now`` are read (``engine.core.timers``): the cost follows the deals
that became due, and an idle tick is one index probe. A batch that fails is retried deal by deal,
each in its own savepoint: the good ones fire, a bad one is logged, recorded and postponed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from engine.core import timers
from engine.core.context import Context
from engine.core.evaluation import Active, Evaluation
from engine.crashpoints import crashpoint
from engine.errors import ConveyorError
from engine.rules.evaluators.reference import Decision
from storage import repositories as repo
from storage.db import is_contention

__all__ = ["TICK_RETRY_DELAY", "TickReport", "Ticks"]

#: A deal whose evaluation fails in a tick is tried again this much later (logged and recorded).
TICK_RETRY_DELAY = timedelta(hours=1)

log = logging.getLogger("conveyor.engine")

Fired = dict[int, set[tuple[str, str]]]


@dataclass(frozen=True)
class TickReport:
    at: datetime
    deals_examined: int
    rules_fired: int
    actions_queued: int
    #: Deals whose evaluation failed; each was logged, recorded and postponed by ``TICK_RETRY_DELAY``.
    deals_failed: int = 0


class Ticks:
    """Time-based evaluation of due deals."""

    def __init__(self, context: Context, evaluation: Evaluation):
        self._context = context
        self._evaluation = evaluation

    def tick(self, batch: int = 500) -> TickReport:
        """Evaluate the deals whose time conditions became due by ``clock.now()``; catches up any backlog.

        ``deals_examined`` counts the due deals read.
        """
        now = self._context.clock.now()
        examined = fired = queued = failed = 0
        seen: set[int] = set()
        while True:
            with self._context.transaction() as s:
                ids = [i for i in timers.due_deal_ids(s, now, batch) if i not in seen]
                if not ids:
                    break  # (a deal re-marked due within this tick waits for the next one)
                done = repo.fired_occurrences_many(s, ids)
                savepoint = s.begin_nested()
                try:
                    recorded = self._tick_deals(s, ids, done, now)
                    savepoint.commit()
                except Exception as exc:
                    savepoint.rollback()
                    if is_contention(exc):
                        raise
                    # Deal by deal, each in its own savepoint: the good ones fire, the bad ones wait.
                    recorded = []
                    for deal_id in ids:
                        ok, deal_recorded = self._tick_one(s, deal_id, done, now)
                        recorded += deal_recorded
                        failed += not ok
                crashpoint("after_evaluate_before_commit")
                fired += len(recorded)
                queued += sum(len(d.actions) for d in recorded)
                examined += len(ids)
                seen.update(ids)
        return TickReport(
            at=now,
            deals_examined=examined,
            rules_fired=fired,
            actions_queued=queued,
            deals_failed=failed,
        )

    def _tick_deals(self, s: Session, ids: list[int], done: Fired, now: datetime) -> list[Decision]:
        """Decide every due deal first, then write the batch: firings and outbox rows in two INSERTs,
        the changed due instants in one UPDATE (``timers.store_due``), all in id order."""
        plans = []
        actives: dict[str, Active] = {}  # each funnel's active version, read once per batch
        with s.no_autoflush:
            deals = repo.deals_by_ids(s, ids, skip_locked=True)  # PG: see deals_by_ids
            for deal in deals:
                if deal.closed:
                    deal.next_due_at = None  # closed deals have no time rules to wait for
                    continue
                active = actives.get(deal.funnel_id)
                if active is None:
                    active = actives[deal.funnel_id] = self._evaluation.active(s, deal.funnel_id)
                plans.append(self._evaluation.decide(s, deal, now, done[deal.id], active))
            recorded = self._evaluation.record(s, plans, now, "tick")
            timers.store_due(s, deals)
        s.flush()
        return recorded

    def _tick_one(
        self, s: Session, deal_id: int, done: Fired, now: datetime
    ) -> tuple[bool, list[Decision]]:
        """One deal of a failed batch in its own savepoint; a failure is logged, recorded, postponed."""
        savepoint = s.begin_nested()
        try:
            recorded = self._tick_deals(s, [deal_id], done, now)
            savepoint.commit()
            return True, recorded
        except Exception as exc:
            savepoint.rollback()
            if is_contention(exc):
                raise
            reason = str(exc) if isinstance(exc, ConveyorError) else f"{type(exc).__name__}: {exc}"
            reason = reason.splitlines()[0][:500] if reason else type(exc).__name__
            retry_at = now + TICK_RETRY_DELAY
            log.warning(
                "tick: deal %s could not be evaluated (tried again at %s): %s",
                deal_id,
                retry_at.isoformat(),
                reason,
            )
            deal = repo.get_deal(s, deal_id)
            if deal is not None:
                timers.finish(s, deal, retry_at)
                repo.add_event(
                    s,
                    deal_id,
                    now,
                    "evaluation_failed",
                    "engine",
                    {"error": reason, "retry_at": retry_at.isoformat()},
                )
                s.flush()
            return False, []

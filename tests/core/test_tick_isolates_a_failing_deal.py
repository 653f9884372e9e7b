"""A tick evaluates every other deal when one deal's evaluation fails, and comes back to it an hour later.

The failure is a real database refusal (a trigger refusing that deal's firing, as an over-long value
would be refused), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import run_until_idle
from storage import repositories as repo
from storage.models import Deal, DealEvent, Firing
from tests.support.database import refuse_inserts
from tests.support.sessions import db_session


def events(c: Conveyor, deal_id: int, kind: str) -> list[DealEvent]:
    with db_session(c) as s:
        return repo.list_events(s, deal_id, kinds=[kind])


def _idle_firings(c: Conveyor) -> dict[int, int]:
    with db_session(c) as s:
        rows = (
            s.execute(sa.select(Firing.deal_id).where(Firing.rule_id == "incoming_idle_24h"))
            .scalars()
            .all()
        )
    return {d: rows.count(d) for d in set(rows)}


def test_a_tick_evaluates_the_other_deals_when_one_fails_and_retries_it_an_hour_later(
    conveyor, backend, clock
):
    deals = [conveyor.create_deal("techflow", title=f"Lead {n}") for n in range(3)]
    run_until_idle(conveyor)
    bad = deals[1]
    repair = refuse_inserts(
        backend, "firings", "value too long for type character varying(300)", deal_id=bad
    )
    clock.advance(timedelta(hours=25))
    report = conveyor.tick()
    assert report.deals_failed == 1
    assert _idle_firings(conveyor) == {
        deals[0]: 1,
        deals[2]: 1,
    }  # the others fired, the bad one waits
    [failure] = events(conveyor, bad, "evaluation_failed")
    assert "value too long" in failure.data["error"]
    with db_session(conveyor) as s:
        assert s.get(Deal, bad).next_due_at == clock.now() + timedelta(hours=1)
    repair()
    clock.advance(timedelta(minutes=30))
    assert conveyor.tick().rules_fired == 0  # postponed, not dropped: not due yet
    clock.advance(timedelta(minutes=30))
    report = conveyor.tick()
    assert (report.deals_failed, report.rules_fired) == (0, 1)
    assert _idle_firings(conveyor) == {deals[0]: 1, deals[1]: 1, deals[2]: 1}

"""Rules on working time, end to end on both databases: a funnel with a calendar, a virtual clock, ticks.

A lead that arrives on Friday at 16:00 Kyiv time under ``working_hours_in_stage >= 8`` (09:00–18:00
on weekdays) fires on Monday at 15:00 — not on Saturday — and the stored due time says so, so ticks
stay incremental; a listed holiday moves it a day; a DST weekend does not shift it; a week-long
holiday stretches a 48-working-hour rule by a week. Tasks due in working hours land likewise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import run_until_idle
from engine.rules.evaluators import reference
from engine.simulate.simulator import run_scenario
from storage import repositories as repo
from tests.support.sessions import db_session

KYIV = ZoneInfo("Europe/Kyiv")
EPSILON_US = timedelta(
    microseconds=3600
)  # business-rules' 1e-6 hours: ">= 8" holds from 8 h - 3.6 ms
OFFICE = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def kyiv(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=KYIV)


def funnel(hours: float, dates: list[str], actions: list[dict[str, Any]] | None = None) -> dict:
    return {
        "funnel": "calls",
        "name": "Calls",
        "stages": [{"id": "incoming", "name": "Incoming"}, {"id": "done", "name": "Done"}],
        "events": [{"name": "proposal_opened"}],
        "calendar": {
            "zone": "Europe/Kyiv",
            "week": OFFICE,
            "holidays": {"country": "UA", "dates": dates},
        },
        "rules": [
            {
                "id": "escalate",
                "conditions": {
                    "all": [
                        {"name": "stage", "operator": "equal_to", "value": "incoming"},
                        {
                            "name": "working_hours_in_stage",
                            "operator": "greater_than_or_equal_to",
                            "value": hours,
                        },
                    ]
                },
                "actions": actions or [{"name": "notify_manager", "params": {"text": "Call back"}}],
            }
        ],
    }


@pytest.fixture
def calls(backend: str) -> Iterator[tuple[Conveyor, VirtualClock]]:
    clock = VirtualClock(kyiv(2026, 1, 5, 9).astimezone(UTC))
    c = Conveyor(backend, clock=clock)
    c.add_manager("Olena", "+380501110001")
    yield c, clock
    c.close()


def _fired(c: Conveyor) -> list[Any]:
    with db_session(c) as s:
        return [f for f in repo.list_firings(s) if f.rule_id == "escalate"]


def _next_due(c: Conveyor, deal: int) -> datetime | None:
    with db_session(c) as s:
        return repo.get_deal(s, deal).next_due_at


@pytest.mark.parametrize(
    ("arrives", "hours", "dates", "fires"),
    [
        pytest.param(kyiv(2026, 12, 4, 16), 8, [], kyiv(2026, 12, 7, 15), id="friday-to-monday"),
        pytest.param(
            kyiv(2026, 12, 4, 16), 8, ["2026-12-07"], kyiv(2026, 12, 8, 15), id="holiday-monday"
        ),
        pytest.param(kyiv(2026, 3, 27, 16), 8, [], kyiv(2026, 3, 30, 15), id="clocks-forward"),
        pytest.param(kyiv(2026, 10, 23, 16), 8, [], kyiv(2026, 10, 26, 15), id="clocks-back"),
        pytest.param(
            kyiv(2026, 12, 4, 9),
            48,
            [f"2026-12-{d:02d}" for d in range(7, 12)],
            kyiv(2026, 12, 18, 12),
            id="48h-across-a-week-long-holiday",
        ),
    ],
)
def test_a_working_hours_rule_fires_when_the_working_hours_have_passed_and_not_before(
    calls: tuple[Conveyor, VirtualClock],
    arrives: datetime,
    hours: float,
    dates: list[str],
    fires: datetime,
) -> None:
    c, clock = calls
    c.save_ruleset(funnel(hours, dates))
    clock.set(arrives.astimezone(UTC))
    deal = c.create_deal("calls", title="Acme")
    # The due time is stored in working time, exactly where business-rules starts to say yes
    # (within its 1e-6 h tolerance of 15:00), so no tick before it looks at the deal.
    due = _next_due(c, deal)
    assert due is not None and fires - EPSILON_US <= due <= fires
    ruleset, state = c.ruleset("calls"), c.deal(deal)
    assert reference.evaluate(ruleset, state, due - timedelta(microseconds=1)) == []
    assert [d.rule.id for d in reference.evaluate(ruleset, state, due)] == ["escalate"]
    clock.set((arrives + timedelta(days=1)).astimezone(UTC))  # 24 calendar hours later
    assert c.tick().deals_examined == 0
    clock.set((fires - timedelta(minutes=1)).astimezone(UTC))
    assert c.tick().deals_examined == 0
    assert _fired(c) == []
    clock.set(fires.astimezone(UTC))
    report = c.tick()
    assert (report.deals_examined, report.rules_fired) == (1, 1)
    (firing,) = _fired(c)
    assert firing.due_at == fires  # the instant the working hours were reached
    assert firing.values["working_hours_in_stage"] == pytest.approx(hours)
    assert _next_due(c, deal) is None


def test_a_task_due_in_working_hours_is_due_after_the_weekend(
    calls: tuple[Conveyor, VirtualClock],
) -> None:
    c, clock = calls
    task = {
        "name": "create_task",
        "params": {"title": "Call {title}", "due_in_working_hours": 2},
    }
    c.save_ruleset(funnel(0.5, [], actions=[task]))
    clock.set(kyiv(2026, 12, 4, 17).astimezone(UTC))  # Friday 17:00: half an hour later is 17:30
    deal = c.create_deal("calls", title="Acme")
    clock.set(kyiv(2026, 12, 4, 17, 30).astimezone(UTC))
    assert c.tick().rules_fired == 1
    run_until_idle(c)
    with db_session(c) as s:
        (row,) = repo.list_tasks(s)
        assert row.deal_id == deal and row.title == "Call Acme"
        # 30 min left on Friday, 1.5 h on Monday morning.
        assert row.due_at == kyiv(2026, 12, 7, 10, 30)


def test_hours_since_an_event_count_working_time_in_the_twin(
    calls: tuple[Conveyor, VirtualClock],
) -> None:
    c, clock = calls
    doc = funnel(8, [])
    doc["rules"][0]["conditions"]["all"][1] = {
        "name": "working_hours_since_proposal_opened",
        "operator": "greater_than",
        "value": 3,
    }
    c.save_ruleset(doc)
    clock.set(kyiv(2026, 12, 4, 17).astimezone(UTC))
    deal = c.create_deal("calls", title="Acme")
    c.record_event(deal, "proposal_opened")
    # One hour on Friday; two more on Monday 09:00–11:00; "greater than" 3 just after.
    due = _next_due(c, deal)
    assert due is not None and kyiv(2026, 12, 7, 11) < due <= kyiv(2026, 12, 7, 11) + 2 * EPSILON_US
    clock.set(kyiv(2026, 12, 7, 10, 59).astimezone(UTC))
    assert c.tick().deals_examined == 0
    clock.set(kyiv(2026, 12, 7, 11, 1).astimezone(UTC))
    assert c.tick().rules_fired == 1


def test_the_simulator_fires_a_working_hours_rule_on_monday_afternoon(
    fresh_database: Any, tmp_path: Path
) -> None:
    rules = tmp_path / "calls.json"
    rules.write_text(json.dumps(funnel(8, [])), encoding="utf-8")

    def line(when: datetime, event: str, **data: Any) -> str:
        stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return json.dumps({"at": stamp, "event": event, **data})

    friday = kyiv(2026, 12, 4, 16)
    scenario = [
        line(friday, "manager", name="Olena", phone="+380501110001"),
        line(friday, "create", deal="A", funnel="calls", fields={"title": "Acme"}),
        line(kyiv(2026, 12, 7, 16), "end"),
    ]
    out = run_scenario(scenario, [rules], 60, db=fresh_database())
    fired = [o for o in out if o.get("rule") == "escalate"]
    # Hourly ticks from Friday 16:00: the first one at or after Monday 15:00 (13:00 UTC).
    assert [o["at"] for o in fired] == ["2026-12-07T13:00:00Z"]

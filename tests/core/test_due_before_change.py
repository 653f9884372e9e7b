"""Nothing due is skipped by a change: a time rule that fell due between ticks (or while no engine
ran) fires before the change that would reset it, with its own due time (issue 8, break 5)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import run_until_idle
from storage.models import Firing
from tests.conftest import ROOT, SAMPLE_RULES, START
from tests.support.sessions import db_session


@pytest.fixture
def world(backend: str) -> Iterator[tuple[Conveyor, VirtualClock]]:
    clock = VirtualClock(START)
    c = Conveyor(backend, clock=clock)
    c.load_rules_dir(SAMPLE_RULES)
    c.add_manager("Olena", "+380501110001")
    yield c, clock
    c.close()


def _firings(c: Conveyor, deal_id: int, rule: str) -> list[Firing]:
    with db_session(c) as s:
        rows = list(
            s.scalars(select(Firing).where(Firing.deal_id == deal_id, Firing.rule_id == rule))
        )
        s.expunge_all()
        return rows


def _lead_called_once(c: Conveyor, clock: VirtualClock) -> int:
    """A lead created at 09:05 and called at 09:40: its 24 h reminder falls due at 09:40 next day."""
    clock.set(START + timedelta(minutes=5))
    deal = c.create_deal("techflow", key="L1", title="Acme", fields={"phone": "+380501112233"})
    run_until_idle(c)
    clock.set(START + timedelta(minutes=40))
    c.record_activity(deal, "call")
    c.tick()
    return deal


def test_reminder_due_between_ticks_fires_before_the_next_call_resets_it(world) -> None:
    c, clock = world
    deal = _lead_called_once(c, clock)
    clock.set(START + timedelta(days=1, minutes=5))  # the last tick before the reminder falls due
    c.tick()
    assert _firings(c, deal, "incoming_idle_24h") == []
    clock.set(START + timedelta(days=1, minutes=50))  # the next call, before the next tick
    c.record_activity(deal, "call")
    [firing] = _firings(c, deal, "incoming_idle_24h")
    assert firing.due_at == START + timedelta(days=1, minutes=40)  # when it fell due, not when seen
    assert firing.fired_at == START + timedelta(days=1, minutes=50)
    assert firing.trigger == "due"
    c.tick()  # a later tick does not fire it again
    assert len(_firings(c, deal, "incoming_idle_24h")) == 1


def test_reminder_due_while_no_engine_ran_fires_before_the_change(world) -> None:
    c, clock = world
    deal = _lead_called_once(c, clock)
    # No tick for three days (the engine was down); then the manager calls.
    clock.set(START + timedelta(days=3))
    c.record_activity(deal, "call")
    [firing] = _firings(c, deal, "incoming_idle_24h")
    assert firing.due_at == START + timedelta(days=1, minutes=40)


def test_change_before_anything_is_due_fires_no_time_rule(world) -> None:
    c, clock = world
    deal = _lead_called_once(c, clock)
    clock.set(START + timedelta(hours=20))  # the reminder is not due yet
    c.record_activity(deal, "call")
    assert _firings(c, deal, "incoming_idle_24h") == []


def test_simulated_hourly_ticks_do_not_skip_the_reminder_due_between_them(tmp_path: Path) -> None:
    scenario = tmp_path / "lead.jsonl"
    lines = [
        {"at": "2026-03-02T09:00:00Z", "event": "manager", "name": "Olena"},
        {
            "at": "2026-03-02T09:05:00Z",
            "deal": "L1",
            "event": "create",
            "fields": {"title": "Acme", "phone": "+380501112233"},
        },
        {"at": "2026-03-02T09:40:00Z", "deal": "L1", "event": "activity", "kind": "call"},
        {"at": "2026-03-03T09:50:00Z", "deal": "L1", "event": "activity", "kind": "call"},
        {"at": "2026-03-03T12:00:00Z", "event": "end"},
    ]
    scenario.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", "simulate", str(scenario), "--tick-minutes", "60"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    actions = [json.loads(line) for line in out.stdout.splitlines()]
    reminders = [a for a in actions if a["rule"] == "incoming_idle_24h"]
    assert len(reminders) == 1, out.stdout
    assert reminders[0]["at"] == "2026-03-03T09:50:00Z"

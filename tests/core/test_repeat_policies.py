"""Repeat policies across restarts, on SQLite and PostgreSQL: no rule fires twice for one occurrence.

Each test opens a ``Conveyor`` on the backend, acts, closes it and opens a new one (a restart); one test
restarts a real Python process. Counts are read straight from the ``firings`` and ``outbox`` tables.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import run_until_idle
from engine.rules.evaluators.reference import evaluate
from storage import repositories as repo
from tests.support.database import rows
from tests.support.sessions import db_session

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RULES = ROOT / "sample_rules"
H = timedelta(hours=1)

#: A small funnel with one rule per repeat policy, all scoped to stage "b" (a ⇄ b ⇄ c).
POLICY_FUNNEL = {
    "format": "conveyor.ruleset/1",
    "funnel": "policies",
    "name": "Repeat policies",
    "stages": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}, {"id": "c", "name": "C"}],
    "initial_stage": "a",
    "transitions": [
        {"from": "a", "to": "b"},
        {"from": "b", "to": "a"},
        {"from": "b", "to": "c"},
        {"from": "c", "to": "b"},
    ],
    "rules": [
        {
            "id": "welcome_once",
            "repeat": "once_per_deal",
            "conditions": {"all": [{"name": "stage", "operator": "equal_to", "value": "b"}]},
            "actions": [
                {
                    "name": "notify_manager",
                    "params": {"text": "{title} reached B for the first time"},
                }
            ],
        },
        {
            "id": "each_visit",
            "repeat": "once_per_stage_visit",
            "conditions": {"all": [{"name": "stage", "operator": "equal_to", "value": "b"}]},
            "actions": [
                {
                    "name": "create_task",
                    "params": {"title": "Work on {title} in B", "due_in_hours": 4},
                }
            ],
        },
        {
            "id": "nag",
            "repeat": "after_each_activity",
            "conditions": {
                "all": [
                    {"name": "stage", "operator": "equal_to", "value": "b"},
                    {
                        "name": "hours_since_last_activity",
                        "operator": "greater_than_or_equal_to",
                        "value": 2,
                    },
                ]
            },
            "actions": [
                {
                    "name": "notify_manager",
                    "params": {"text": "{title}: 2 h without activity", "priority": "high"},
                }
            ],
        },
    ],
}


@pytest.fixture
def start(backend: str, clock: VirtualClock) -> Iterator[VirtualClock]:
    """The database holds both sample funnels, the policy funnel and two managers; then the handle is closed."""
    c = Conveyor(backend, clock=clock)
    c.load_rules_dir(SAMPLE_RULES)
    c.save_ruleset(POLICY_FUNNEL)
    c.add_manager("Olena", "+380501110001")
    c.add_manager("Petro", "+380501110002")
    c.close()
    yield clock


def restart(backend: str, clock: VirtualClock) -> Conveyor:
    """A new handle on the same database: no memory of the previous one survives."""
    return Conveyor(backend, clock=clock)


def firings(backend: str, deal_id: int, rule: str | None = None) -> list[tuple[str, str]]:
    """(rule id, occurrence) of every firing of a deal, read from the table itself."""
    found = rows(
        backend,
        "SELECT rule_id, occurrence FROM firings WHERE deal_id = :deal ORDER BY id",
        deal=deal_id,
    )
    return [(r, o) for r, o in found if rule is None or r == rule]


def outbox(backend: str, deal_id: int) -> list[tuple[str, str, str]]:
    """(rule id, action, status) of every outbox row of a deal."""
    return rows(
        backend,
        "SELECT f.rule_id, o.action, o.status FROM outbox o JOIN firings f ON f.id = o.firing_id "
        "WHERE o.deal_id = :deal ORDER BY o.id",
        deal=deal_id,
    )


def count(backend: str, table: str, deal_id: int) -> int:
    [(n,)] = rows(backend, f"SELECT count(*) FROM {table} WHERE deal_id = :deal", deal=deal_id)
    return n


def tick_and_dispatch(c: Conveyor) -> None:
    c.tick()
    run_until_idle(c)


# -- exactly once across restarts -------------------------------------------------------------
def test_rerunning_a_tick_after_a_restart_fires_nothing_new(backend, start):
    clock = start
    c = restart(backend, clock)
    deal = c.create_deal("techflow", title="Acme", fields={"phone": "+380501234567"})
    run_until_idle(c)
    clock.advance(25 * H)
    tick_and_dispatch(c)
    assert firings(backend, deal, "incoming_idle_24h") == [
        ("incoming_idle_24h", "visit:1/activity:0")
    ]
    with db_session(c) as s:  # the firing records why: rule, rule-set version, the values it read
        [why] = [f for f in repo.list_firings(s, deal) if f.rule_id == "incoming_idle_24h"]
        assert why.ruleset_version_id == repo.get_funnel(s, "techflow").active_version_id
        assert why.trigger == "tick"
        assert why.values == {"stage": "incoming", "hours_since_last_activity": 25.0}
    before = (firings(backend, deal), outbox(backend, deal), count(backend, "tasks", deal))
    c.close()

    c = restart(backend, clock)  # same instant: the same tick again
    tick_and_dispatch(c)
    tick_and_dispatch(c)
    clock.advance(30 * H)  # and later ticks: no activity, so no new occurrence
    tick_and_dispatch(c)
    c.close()
    assert (firings(backend, deal), outbox(backend, deal), count(backend, "tasks", deal)) == before
    assert all(status == "done" for _, _, status in before[1])


def test_evaluating_the_same_change_twice_records_one_firing(backend, start):
    clock = start
    c = restart(backend, clock)
    deal = c.create_deal("policies", title="Acme")
    c.move_deal(deal, "b")
    rows = outbox(backend, deal)
    # Evaluate the same deal state again, in a new process-like handle, as a redelivered change would.
    c.close()
    c = restart(backend, clock)
    with db_session(c) as s:
        assert c.evaluation.evaluate(s, repo.get_deal(s, deal), clock.now(), "stage_moved") == []
    with db_session(c) as s:
        assert c.evaluation.evaluate(s, repo.get_deal(s, deal), clock.now(), "stage_moved") == []
    c.close()
    assert firings(backend, deal) == [("welcome_once", "deal"), ("each_visit", "visit:2")]
    assert outbox(backend, deal) == rows


def test_the_database_refuses_a_second_firing_of_one_occurrence(backend, start):
    # Bypass the in-memory "already fired" set: the unique key alone must stop a duplicate,
    # as it does when two engines evaluate the same deal at the same instant.
    clock = start
    c = restart(backend, clock)
    deal = c.create_deal("policies", title="Acme")
    c.move_deal(deal, "b")
    state = c.deal(deal)
    decisions = evaluate(
        c.ruleset("policies"), state, clock.now()
    )  # no skip: both rules "fire" again
    assert {d.rule.id for d in decisions} == {"welcome_once", "each_visit"}
    with db_session(c) as s:
        version = repo.get_funnel(s, "policies").active_version_id
        for d in decisions:
            assert (
                repo.insert_firing(
                    s,
                    deal_id=deal,
                    funnel_id="policies",
                    rule_id=d.rule.id,
                    rule_name=d.rule.name,
                    occurrence=d.occurrence,
                    ruleset_version_id=version,
                    trigger="duplicate",
                    values={},
                    due_at=clock.now(),
                    fired_at=clock.now(),
                    chain=[],
                )
                is None
            )
    c.close()
    assert len(firings(backend, deal)) == 2


def test_two_handles_on_one_database_ticking_at_the_same_instant_fire_once(backend, start):
    clock = start
    first, second = restart(backend, clock), restart(backend, clock)
    deal = first.create_deal("policies", title="Acme")
    first.move_deal(deal, "b")
    clock.advance(3 * H)
    first.tick()
    second.tick()
    run_until_idle(second)
    run_until_idle(first)
    first.close()
    second.close()
    assert firings(backend, deal, "nag") == [("nag", "visit:2/activity:1")]
    assert [r for r in outbox(backend, deal) if r[0] == "nag"] == [
        ("nag", "notify_manager", "done")
    ]
    assert (
        count(backend, "tasks", deal) == 3
    )  # each_visit's task, the welcome and one nag notification


# -- after_each_activity -------------------------------------------------------------------------
def test_after_each_activity_rearms_after_record_activity_across_restarts(backend, start):
    clock = start
    c = restart(backend, clock)
    deal = c.create_deal("policies", title="Acme")
    c.move_deal(deal, "b")  # a manual move is activity #1
    clock.advance(2 * H)
    tick_and_dispatch(c)
    c.close()

    c = restart(backend, clock)
    clock.advance(5 * H)
    tick_and_dispatch(c)  # still idle, same occurrence: nothing
    assert firings(backend, deal, "nag") == [("nag", "visit:2/activity:1")]
    c.record_activity(deal, "call")
    clock.advance(1 * H)
    tick_and_dispatch(c)  # only 1 h since the call
    assert len(firings(backend, deal, "nag")) == 1
    c.close()

    c = restart(backend, clock)
    clock.advance(1 * H)
    tick_and_dispatch(c)
    tick_and_dispatch(c)
    c.close()
    assert firings(backend, deal, "nag") == [
        ("nag", "visit:2/activity:1"),
        ("nag", "visit:2/activity:2"),
    ]
    assert [r for r in outbox(backend, deal) if r[0] == "nag"] == [
        ("nag", "notify_manager", "done")
    ] * 2


def test_after_each_activity_rearms_after_complete_task(backend, start):
    clock = start
    c = restart(backend, clock)
    deal = c.create_deal("techflow", title="Acme")
    run_until_idle(c)
    clock.advance(24 * H)
    tick_and_dispatch(c)
    with db_session(c) as s:
        first_task = repo.list_tasks(s, status="open", deal_id=deal)[0].id
    c.close()

    c = restart(backend, clock)
    clock.advance(2 * H)
    c.complete_task(first_task)
    c.complete_task(first_task)  # completing it twice is one activity, not two
    clock.advance(23 * H)
    tick_and_dispatch(c)
    assert len(firings(backend, deal, "incoming_idle_24h")) == 1
    clock.advance(1 * H)
    tick_and_dispatch(c)
    c.close()
    assert firings(backend, deal, "incoming_idle_24h") == [
        ("incoming_idle_24h", "visit:1/activity:0"),
        ("incoming_idle_24h", "visit:1/activity:1"),
    ]
    assert count(backend, "tasks", deal) == 3  # first call task + two reminders


def test_engine_actions_do_not_rearm_after_each_activity(backend, start):
    # assign_manager and create_task are the engine's doing, not the manager's: no new occurrence.
    clock = start
    c = restart(backend, clock)
    deal = c.create_deal("techflow", title="Acme")
    run_until_idle(c)
    assert c.deal(deal).activity_seq == 0
    for _ in range(3):
        clock.advance(24 * H)
        tick_and_dispatch(c)
    c.close()
    assert len(firings(backend, deal, "incoming_idle_24h")) == 1


# -- once_per_stage_visit ------------------------------------------------------------------------
def test_once_per_stage_visit_rearms_only_after_leaving_and_reentering(backend, start):
    clock = start
    c = restart(backend, clock)
    deal = c.create_deal("policies", title="Acme")
    c.move_deal(deal, "b")
    run_until_idle(c)
    c.update_deal(deal, {"title": "Acme Ltd"})  # changes inside the visit
    c.record_activity(deal, "note")
    c.close()

    c = restart(backend, clock)
    tick_and_dispatch(c)
    assert firings(backend, deal, "each_visit") == [("each_visit", "visit:2")]
    clock.advance(H)
    c.move_deal(deal, "c")
    c.close()

    c = restart(backend, clock)
    clock.advance(H)
    c.move_deal(deal, "b")
    run_until_idle(c)
    tick_and_dispatch(c)
    c.close()
    assert firings(backend, deal, "each_visit") == [
        ("each_visit", "visit:2"),
        ("each_visit", "visit:4"),
    ]
    titles = [
        t
        for (t,) in rows(
            backend,
            "SELECT title FROM tasks WHERE deal_id = :deal AND kind = 'task' ORDER BY id",
            deal=deal,
        )
    ]
    assert titles == ["Work on Acme in B", "Work on Acme Ltd in B"]  # rendered when carried out


def test_cold_call_task_once_per_visit_through_the_sample_funnel(backend, start):
    clock = start
    c = restart(backend, clock)
    deal = c.create_deal("techflow", title="Acme")
    c.move_deal(deal, "cold_call")
    run_until_idle(c)
    c.close()
    c = restart(backend, clock)
    clock.advance(H)
    tick_and_dispatch(c)
    c.move_deal(deal, "qualification")
    c.update_deal(deal, {"budget": "no"})  # qualification_no moves it back to cold call: visit 4
    run_until_idle(c)
    run_until_idle(c)
    c.close()
    assert firings(backend, deal, "cold_call_again") == [
        ("cold_call_again", "visit:2"),
        ("cold_call_again", "visit:4"),
    ]


# -- once_per_deal -------------------------------------------------------------------------------
def test_once_per_deal_never_rearms(backend, start):
    clock = start
    c = restart(backend, clock)
    deal = c.create_deal("policies", title="Acme")
    for stage in ("b", "a", "b", "c", "b"):
        clock.advance(H)
        c.move_deal(deal, stage)
        run_until_idle(c)
        c.close()
        c = restart(backend, clock)
        tick_and_dispatch(c)
    c.close()
    assert firings(backend, deal, "welcome_once") == [("welcome_once", "deal")]
    assert firings(backend, deal, "each_visit") == [
        ("each_visit", "visit:2"),
        ("each_visit", "visit:4"),
        ("each_visit", "visit:6"),
    ]


def test_payment_starts_one_project_however_often_it_is_reported(backend, start):
    clock = start
    c = restart(backend, clock)
    deal = c.create_deal(
        "techflow", title="Acme", fields={"phone": "+380501234567", "amount": 1000}
    )
    c.move_deal(deal, "qualification")
    c.update_deal(
        deal,
        {
            "budget": "yes",
            "authority": "yes",
            "need": "yes",
            "company_name": "Acme LLC",
            "tax_id": "1",
            "billing_address": "Kyiv",
        },
    )
    c.move_deal(deal, "proposal")
    c.move_deal(deal, "contract")
    run_until_idle(c)
    c.record_event(deal, "payment_received", data={"amount": 500})
    c.close()

    c = restart(backend, clock)  # restart between the payment and its dispatch
    run_until_idle(c)
    clock.advance(H)
    c.record_event(deal, "payment_received", data={"amount": 500})
    run_until_idle(c)
    tick_and_dispatch(c)
    c.close()
    assert firings(backend, deal, "payment_to_paid") == [("payment_to_paid", "deal")]
    assert firings(backend, deal, "paid_start_project") == [("paid_start_project", "deal")]
    assert count(backend, "messages", deal) == 1  # the contract SMS, sent once
    children = rows(backend, "SELECT key FROM deals WHERE parent_deal_id = :deal", deal=deal)
    assert len(children) == 1


# -- a real process restart ----------------------------------------------------------------------
TICK_SCRIPT = textwrap.dedent("""
    import json, sys
    from engine.clock import VirtualClock, parse_instant
    from engine.core.conveyor import Conveyor
    from engine.outbox.dispatcher import run_until_idle

    url, when, deal, action = sys.argv[1], parse_instant(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    c = Conveyor(url, clock=VirtualClock(when))
    if action == "activity":
        c.record_activity(deal, "call")
    report = c.tick()
    done = run_until_idle(c)
    c.close()
    print(json.dumps({"fired": report.rules_fired, "executed": [[e.rule_id, e.action] for e in done]}))
""")


def run_process(backend: str, when: str, deal: int, action: str = "tick") -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", TICK_SCRIPT, backend, when, str(deal), action],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_restarting_the_process_never_fires_a_rule_twice(backend, start):
    clock = start
    c = restart(backend, clock)
    deal = c.create_deal("techflow", title="Acme")
    run_until_idle(c)
    c.close()

    day = "2026-03-03T09:30:00Z"  # 24.5 h after creation
    assert run_process(backend, day, deal) == {
        "fired": 1,
        "executed": [["incoming_idle_24h", "notify_manager"]],
    }
    assert run_process(backend, day, deal) == {
        "fired": 0,
        "executed": [],
    }  # the same tick, new process
    # A call a day later re-arms the reminder: the next process fires it once more, 24 h after the call.
    assert run_process(backend, "2026-03-04T10:00:00Z", deal, "activity") == {
        "fired": 0,
        "executed": [],
    }
    assert run_process(backend, "2026-03-05T10:00:00Z", deal)["executed"] == [
        ["incoming_idle_24h", "notify_manager"]
    ]
    assert firings(backend, deal, "incoming_idle_24h") == [
        ("incoming_idle_24h", "visit:1/activity:0"),
        ("incoming_idle_24h", "visit:1/activity:1"),
    ]
    assert [r for r in outbox(backend, deal) if r[0] == "incoming_idle_24h"] == [
        ("incoming_idle_24h", "notify_manager", "done")
    ] * 2

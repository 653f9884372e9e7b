"""Bounded cascades and stage guards: loops stop with a visible error, refused moves change nothing.

A ``move_to_stage`` is itself a change and is evaluated again; a loop between stages must end as a
dead outbox row naming the rules in the loop. A manual move into a guarded stage with missing
fields raises ``GuardFailed`` and leaves every table as it was; an engine move that a guard refuses
ends as a failed (then dead) row with the error, never silently.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.core.conveyor import Conveyor
from engine.core.evaluation import MAX_CASCADE
from engine.errors import GuardFailed, TransitionNotAllowed
from engine.outbox.dispatcher import RetryPolicy, dispatch_internal, retry, run_until_idle
from engine.simulate.simulator import run_scenario
from storage import repositories as repo
from tests.support.database import rows
from tests.support.sessions import db_session


def _move_rule(rule_id: str, from_stage: str, to_stage: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": f"{from_stage} → {to_stage}",
        "conditions": {"all": [{"name": "stage", "operator": "equal_to", "value": from_stage}]},
        "actions": [{"name": "move_to_stage", "params": {"to_stage": to_stage}}],
    }


def funnel(funnel_id: str, rules: list[dict], guard: list[str] | None = None) -> dict[str, Any]:
    """Stages start, a, b, c (c guarded by ``guard`` if given) and a ``tax_id`` text field."""
    stages: list[dict[str, Any]] = [{"id": s, "name": s.upper()} for s in ("start", "a", "b", "c")]
    if guard:
        stages[3]["guard"] = {"required_fields": guard}
    return {
        "format": "conveyor.ruleset/1",
        "funnel": funnel_id,
        "name": funnel_id.title(),
        "fields": [{"name": "tax_id", "type": "text"}, {"name": "iban", "type": "text"}],
        "stages": stages,
        "initial_stage": "start",
        "rules": rules,
    }


PING_PONG = funnel("ping_pong", [_move_rule("a_to_b", "a", "b"), _move_rule("b_to_a", "b", "a")])
TRIANGLE = funnel(
    "triangle",
    [
        _move_rule("a_to_b", "a", "b"),
        _move_rule("b_to_c", "b", "c"),
        _move_rule("c_to_a", "c", "a"),
    ],
)
LOCKED = funnel("locked", [_move_rule("start_to_c", "start", "c")], guard=["tax_id", "iban"])


def snapshot(url: str, deal_id: int) -> dict[str, Any]:
    """Everything a change could touch, read straight from the tables."""
    tables = {
        "deal": "deals WHERE id",
        "events": "deal_events WHERE deal_id",
        "firings": "firings WHERE deal_id",
        "outbox": "outbox WHERE deal_id",
        "tasks": "tasks WHERE deal_id",
        "messages": "messages WHERE deal_id",
        "invoices": "invoices WHERE deal_id",
    }
    return {
        what: rows(url, f"SELECT * FROM {where} = :deal_id", deal_id=deal_id)
        for what, where in tables.items()
    }


def outbox_rows(c: Conveyor, deal_id: int) -> list[Any]:
    with db_session(c) as s:
        rows = [
            (row.action, row.status, row.last_error, row.attempts, firing.rule_id)
            for row, firing in repo.list_outbox(s, deal_id=deal_id)
        ]
    return list(reversed(rows))  # oldest first


# -- cascades ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "document,loop",
    [(PING_PONG, ["a_to_b", "b_to_a"]), (TRIANGLE, ["a_to_b", "b_to_c", "c_to_a"])],
    ids=["two-stage loop", "three-stage loop"],
)
def test_move_to_stage_loop_stops_with_a_dead_row_naming_the_rules(conveyor, document, loop):
    conveyor.save_ruleset(document)
    deal = conveyor.create_deal(document["funnel"], title="Loopy")
    conveyor.move_deal(deal, "a")
    executed = run_until_idle(conveyor)  # must settle, not spin until the round limit

    rows = outbox_rows(conveyor, deal)
    dead = [r for r in rows if r[1] == "dead"]
    assert len(dead) == 1, rows
    action, _, error, attempts, _ = dead[0]
    assert action == "move_to_stage" and attempts == 1  # a loop is permanent: not retried
    assert "cascade" in error and str(MAX_CASCADE) in error
    for rule_id in loop:
        assert rule_id in error
    assert all(status == "done" for _, status, *_ in rows if status != "dead")
    # The moves that did happen are bounded, and the failed one is reported, not swallowed.
    moves = [e for e in executed if e.action == "move_to_stage"]
    assert MAX_CASCADE <= len(moves) <= MAX_CASCADE + 2
    assert [e.status for e in moves][-1] == "dead" and moves[-1].error == error
    with db_session(conveyor) as s:
        assert len(repo.list_firings(s, deal)) == len(rows)
    # Nothing is left to do: a later dispatch or tick does not restart the loop.
    conveyor.tick()
    assert run_until_idle(conveyor) == []


def test_a_loop_reports_its_error_line_in_the_simulator(tmp_path: Path, fresh_database):
    rules = tmp_path / "ping_pong.json"
    rules.write_text(json.dumps(PING_PONG), encoding="utf-8")
    lines = [
        json.dumps(x)
        for x in (
            {"at": "2026-03-02T09:00:00Z", "event": "manager", "name": "Olena"},
            {"at": "2026-03-02T09:00:00Z", "event": "create", "deal": "L", "funnel": "ping_pong"},
            {"at": "2026-03-02T09:01:00Z", "event": "move", "deal": "L", "stage": "a"},
            {"at": "2026-03-02T10:00:00Z", "event": "end"},
        )
    ]
    out = run_scenario(lines, [rules], db=fresh_database())
    dead = [line for line in out if line.get("status") == "dead"]
    assert len(dead) == 1
    assert dead[0]["deal"] == "L" and dead[0]["action"] == "move_to_stage"
    assert "a_to_b" in dead[0]["error"] and "b_to_a" in dead[0]["error"]
    assert len(out) <= MAX_CASCADE + 2


def test_a_long_but_finite_chain_of_moves_is_not_mistaken_for_a_loop(conveyor):
    conveyor.save_ruleset(
        funnel(
            "chain",
            [
                _move_rule("start_to_a", "start", "a"),
                _move_rule("a_to_b", "a", "b"),
                _move_rule("b_to_c", "b", "c"),
            ],
        )
    )
    deal = conveyor.create_deal("chain", title="Chain")
    run_until_idle(conveyor)
    assert conveyor.deal(deal).stage == "c"
    assert [r[1] for r in outbox_rows(conveyor, deal)] == ["done", "done", "done"]


def test_a_process_that_starts_itself_stops_after_a_bounded_number_of_deals(conveyor):
    spawn = {
        "format": "conveyor.ruleset/1",
        "funnel": "spawn",
        "name": "Spawn",
        "stages": [{"id": "s", "name": "S"}],
        "rules": [
            {
                "id": "start_again",
                "conditions": {"all": [{"name": "stage", "operator": "equal_to", "value": "s"}]},
                "actions": [{"name": "start_process", "params": {"funnel": "spawn"}}],
            }
        ],
    }
    conveyor.save_ruleset(spawn)
    conveyor.create_deal("spawn", title="Seed")
    executed = run_until_idle(conveyor, max_rounds=100)  # settles: no deal factory without end

    with db_session(conveyor) as s:
        deals = repo.list_deals(s, "spawn")
        dead = repo.list_outbox(s, statuses=["dead"])
    assert len(deals) <= MAX_CASCADE + 2
    assert len(dead) == 1 and "start_again" in dead[0][0].last_error
    assert executed[-1].status == "dead" and executed[-1].action == "start_process"


def test_a_second_process_of_the_same_funnel_gets_its_own_deal(conveyor):
    # Re-entering a stage whose rule starts a process (once per visit) starts a second project.
    again = funnel(
        "restarts",
        [
            {
                "id": "kick",
                "conditions": {"all": [{"name": "stage", "operator": "equal_to", "value": "a"}]},
                "actions": [{"name": "start_process", "params": {"funnel": "project_work"}}],
            }
        ],
    )
    conveyor.save_ruleset(again)
    deal = conveyor.create_deal("restarts", key="R-1", title="Twice", stage="a")
    conveyor.move_deal(deal, "b")
    conveyor.move_deal(deal, "a")
    executed = run_until_idle(conveyor)
    starts = [e for e in executed if e.action == "start_process"]
    assert [(e.status, e.params.get("deal")) for e in starts] == [
        ("done", "R-1/project_work"),
        ("done", "R-1/project_work#2"),
    ]


# -- manual moves into guarded stages -----------------------------------------------------------
def _deal_in_proposal(conveyor: Conveyor, **fields: Any) -> int:
    deal = conveyor.create_deal(
        "techflow", title="Acme", fields={"phone": "+380501234567", "amount": 1000}
    )
    conveyor.move_deal(deal, "qualification")
    conveyor.update_deal(deal, {"budget": "yes", "authority": "yes", "need": "yes", **fields})
    conveyor.move_deal(deal, "proposal")
    run_until_idle(conveyor)
    return deal


def test_manual_move_into_guarded_stage_names_the_missing_fields_and_changes_nothing(
    conveyor, backend, clock
):
    deal = _deal_in_proposal(conveyor, company_name="Acme LLC", billing_address="   ")
    before = snapshot(backend, deal)
    clock.advance(timedelta(minutes=5))

    with pytest.raises(GuardFailed) as info:
        conveyor.move_deal(deal, "contract")
    assert str(info.value) == (
        "Cannot move into stage 'Contract': fill in Counterparty: tax id (ЄДРПОУ),"
        " Counterparty: billing address first."
    )
    assert info.value.missing == ["tax_id", "billing_address"]  # blank text is not filled
    assert "company name" not in str(info.value)
    assert "Traceback" not in str(info.value)

    assert (
        snapshot(backend, deal) == before
    )  # stage, events, firings, outbox, activity: all as they were
    assert run_until_idle(conveyor) == []
    assert conveyor.deal(deal).stage == "proposal"


def test_guarded_move_succeeds_once_the_fields_are_filled(conveyor):
    deal = _deal_in_proposal(conveyor)
    with pytest.raises(
        GuardFailed,
        match=r"fill in Counterparty: company name, Counterparty: tax id \(ЄДРПОУ\),"
        r" Counterparty: billing address first",
    ):
        conveyor.move_deal(deal, "contract")
    conveyor.update_deal(
        deal, {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}
    )
    conveyor.move_deal(deal, "contract")
    executed = run_until_idle(conveyor)
    assert conveyor.deal(deal).stage == "contract"
    assert [(e.rule_id, e.action, e.status) for e in executed] == [
        ("contract_invoice_sms", "generate_invoice", "done"),
        ("contract_invoice_sms", "send_sms", "done"),
    ]


def test_creating_a_deal_straight_into_a_guarded_stage_is_held_to_the_guard(conveyor, backend):
    with pytest.raises(
        GuardFailed,
        match=r"'Contract': fill in Counterparty: tax id \(ЄДРПОУ\), Counterparty: billing",
    ):
        conveyor.create_deal(
            "techflow", key="C-1", stage="contract", fields={"company_name": "Acme LLC"}
        )
    assert rows(backend, "SELECT count(*) FROM deals") == [(0,)]
    assert rows(backend, "SELECT count(*) FROM firings") == [(0,)]
    deal = conveyor.create_deal(
        "techflow",
        key="C-1",
        stage="contract",
        fields={
            "phone": "+380501234567",
            "amount": 10,
            "company_name": "Acme LLC",
            "tax_id": "1",
            "billing_address": "Kyiv",
        },
    )
    assert [e.action for e in run_until_idle(conveyor)] == ["generate_invoice", "send_sms"]
    assert conveyor.deal(deal).stage == "contract"


def test_a_move_the_transitions_do_not_allow_is_refused_and_changes_nothing(conveyor, backend):
    deal = conveyor.create_deal("techflow", title="Acme")
    run_until_idle(conveyor)
    before = snapshot(backend, deal)
    with pytest.raises(
        TransitionNotAllowed, match="'incoming' to 'paid'.*qualification, cold_call"
    ):
        conveyor.move_deal(deal, "paid")
    assert snapshot(backend, deal) == before


# -- engine moves into guarded stages ---------------------------------------------------------
def test_engine_move_into_guarded_stage_fails_visibly_and_retries(conveyor, clock):
    conveyor.save_ruleset(LOCKED)
    deal = conveyor.create_deal("locked", title="Guarded", fields={"iban": "UA00"})
    first = run_until_idle(conveyor)

    assert [(e.rule_id, e.action, e.status) for e in first] == [
        ("start_to_c", "move_to_stage", "failed")
    ]
    assert "tax_id" in first[0].error and "iban" not in first[0].error
    [(action, status, error, attempts, rule_id)] = outbox_rows(conveyor, deal)
    assert (action, status, attempts, rule_id) == ("move_to_stage", "failed", 1, "start_to_c")
    assert error == first[0].error and error.startswith(
        "Cannot move into stage 'C': fill in tax_id"
    )
    assert conveyor.deal(deal).stage == "start"

    # Retried with backoff until it is dead, still naming the field; the deal never moves.
    policy = RetryPolicy()
    for _ in range(policy.max_attempts + 2):
        clock.advance(policy.cap * 2)
        run_until_idle(conveyor)
    [(action, status, error, attempts, _)] = outbox_rows(conveyor, deal)
    assert (status, attempts) == ("dead", policy.max_attempts)
    assert "tax_id" in error
    assert conveyor.deal(deal).stage == "start"


def test_engine_move_goes_through_once_the_owner_fills_the_field(conveyor, clock):
    conveyor.save_ruleset(LOCKED)
    deal = conveyor.create_deal("locked", title="Guarded")
    assert [e.status for e in dispatch_internal(conveyor)] == ["failed"]
    conveyor.update_deal(deal, {"tax_id": "12345678", "iban": "UA00"})
    assert run_until_idle(conveyor) == []  # not due yet: backoff
    clock.advance(RetryPolicy().cap)
    executed = run_until_idle(conveyor)
    assert [(e.action, e.status) for e in executed] == [("move_to_stage", "done")]
    assert conveyor.deal(deal).stage == "c"


def test_a_dead_guarded_move_can_be_retried_by_hand(conveyor, clock):
    conveyor.save_ruleset(LOCKED)
    deal = conveyor.create_deal("locked", title="Guarded")
    for _ in range(RetryPolicy().max_attempts + 1):
        run_until_idle(conveyor)
        clock.advance(RetryPolicy().cap * 2)
    [(_, status, _, _, _)] = outbox_rows(conveyor, deal)
    assert status == "dead"
    conveyor.update_deal(deal, {"tax_id": "12345678", "iban": "UA00"})
    with db_session(conveyor) as s:
        [(row, _)] = repo.list_outbox(s, deal_id=deal)
        row_id = row.id
    retry(conveyor, row_id)
    assert [(e.action, e.status) for e in run_until_idle(conveyor)] == [("move_to_stage", "done")]
    assert conveyor.deal(deal).stage == "c"


def test_guard_refusal_names_the_stage_and_the_field_labels_and_keeps_ids_for_programs(conveyor):
    deal = conveyor.create_deal(
        "techflow", title="Acme", fields={"phone": "+380501234567", "amount": 10}
    )
    for stage in ("qualification", "proposal"):
        conveyor.move_deal(deal, stage)
    with pytest.raises(GuardFailed) as info:
        conveyor.move_deal(deal, "contract")
    assert str(info.value) == (
        "Cannot move into stage 'Contract': fill in Counterparty: company name,"
        " Counterparty: tax id (ЄДРПОУ), Counterparty: billing address first."
    )
    assert info.value.missing == ["company_name", "tax_id", "billing_address"]
    assert info.value.stage == "contract"

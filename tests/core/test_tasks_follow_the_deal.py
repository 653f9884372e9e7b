"""A deal's tasks follow it: leaving a stage cancels the open tasks that stage's rules created."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from engine.document.validate import validate_document
from engine.errors import InvalidChange, RuleSetInvalid
from engine.outbox.dispatcher import run_until_idle
from storage import repositories as repo
from tests.support.sessions import db_session


def _tasks(conveyor, deal):
    with db_session(conveyor) as s:
        return {t.title: (t.status, t.closed_reason) for t in repo.list_tasks(s, deal_id=deal)}


def _to_proposal(conveyor, title="Acme"):
    deal = conveyor.create_deal("techflow", title=title, fields={"phone": "+380501234567"})
    run_until_idle(conveyor)
    conveyor.move_deal(deal, "qualification")
    conveyor.update_deal(deal, {"budget": "yes", "authority": "yes", "need": "yes"})
    conveyor.move_deal(deal, "proposal")
    conveyor.record_event(deal, "proposal_attached")
    run_until_idle(conveyor)
    return deal


def test_call_the_new_lead_is_cancelled_when_the_deal_moves_on(conveyor):
    deal = conveyor.create_deal("techflow", title="Acme")
    run_until_idle(conveyor)
    assert _tasks(conveyor, deal)["Зателефонувати новому ліду Acme"] == ("open", None)

    conveyor.move_deal(deal, "qualification")

    assert _tasks(conveyor, deal)["Зателефонувати новому ліду Acme"] == (
        "cancelled",
        "moved_to:qualification",
    )
    assert conveyor.queries.tasks(deal, status="open") == []
    with db_session(conveyor) as s:
        moved = [e for e in repo.list_events(s, deal) if e.kind == "stage_moved"]
    assert moved[-1].data["cancelled_tasks"] == 1


def test_a_paid_deal_is_no_longer_asked_to_agree_the_proposal(conveyor, clock):
    deal = _to_proposal(conveyor)
    assert _tasks(conveyor, deal)["Зателефонувати Acme, щоб погодити КП"] == ("open", None)
    conveyor.update_deal(
        deal, {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}
    )
    conveyor.move_deal(deal, "contract")
    run_until_idle(conveyor)
    clock.advance(timedelta(hours=1))
    conveyor.record_event(deal, "payment_received", data={"amount": 1000})
    run_until_idle(conveyor)

    assert conveyor.deal(deal).stage == "paid"
    assert _tasks(conveyor, deal)["Зателефонувати Acme, щоб погодити КП"] == (
        "cancelled",
        "moved_to:contract",
    )
    assert not [t for t in conveyor.queries.tasks(deal, status="open") if "КП" in t.title]


def test_keep_after_stage_exit_keeps_the_task_open(conveyor):
    doc = conveyor.ruleset("techflow").to_document()
    rule = next(r for r in doc["rules"] if r["id"] == "assign_new_lead")
    next(a for a in rule["actions"] if a["name"] == "create_task")["keep_after_stage_exit"] = True
    conveyor.save_ruleset(doc, comment="keep the first call")
    deal = conveyor.create_deal("techflow", title="Acme")
    run_until_idle(conveyor)

    conveyor.move_deal(deal, "qualification")

    assert _tasks(conveyor, deal)["Зателефонувати новому ліду Acme"] == ("open", None)
    exported = conveyor.ruleset("techflow").to_document()
    kept = next(r for r in exported["rules"] if r["id"] == "assign_new_lead")["actions"]
    assert [a.get("keep_after_stage_exit") for a in kept] == [None, True]


def test_a_task_queued_before_the_move_is_created_cancelled(conveyor):
    deal = conveyor.create_deal("techflow", title="Late")
    conveyor.move_deal(deal, "qualification")  # before the dispatcher carried out the first rule

    run_until_idle(conveyor)

    assert _tasks(conveyor, deal)["Зателефонувати новому ліду Late"] == (
        "cancelled",
        "moved_to:qualification",
    )


def test_overdue_counts_only_open_tasks(conveyor, clock):
    deal = conveyor.create_deal("techflow", title="Acme")
    run_until_idle(conveyor)
    clock.advance(timedelta(hours=3))  # "Call the new lead" was due in 2 h
    before = conveyor.reports.summary("techflow")
    assert (before.open_tasks, before.overdue_tasks) == (1, 1)
    assert len(conveyor.reports.task_queue(overdue_only=True)) == 1

    conveyor.move_deal(deal, "qualification")

    after = conveyor.reports.summary("techflow")
    assert (after.open_tasks, after.overdue_tasks) == (0, 0)
    assert conveyor.reports.task_queue(overdue_only=True).empty
    assert conveyor.reports.overdue_by_manager("techflow").empty
    cancelled = conveyor.reports.task_queue(status="cancelled")
    # Read in the suite's English: the rule writes the title per language (the stored one is Ukrainian).
    assert cancelled["title"].tolist() == ["Call the new lead Acme"]
    assert not cancelled["overdue"].any()


def test_the_deal_card_tells_done_from_cancelled(conveyor):
    deal = _to_proposal(conveyor)
    agree = next(t for t in conveyor.queries.tasks(deal) if "agree the proposal" in t.title)
    conveyor.move_deal(deal, "cold_call")  # the proposal task is cancelled
    first = conveyor.create_deal("techflow", title="Other")
    run_until_idle(conveyor)
    call = next(t for t in conveyor.queries.tasks(first) if t.status == "open")
    conveyor.complete_task(call.id)

    card = conveyor.reports.deal_card(deal).tasks.set_index("id")
    assert card.loc[agree.id, "status"] == "cancelled"
    assert card.loc[agree.id, "status_text"] == "cancelled: deal moved to Cold call (90 days)"
    other = conveyor.reports.deal_card(first).tasks.set_index("id")
    assert other.loc[call.id, "status_text"] == "done"


def test_completing_a_cancelled_task_is_refused_with_the_reason(conveyor):
    deal = conveyor.create_deal("techflow", title="Acme")
    run_until_idle(conveyor)
    task = conveyor.queries.tasks(deal)[0]
    conveyor.move_deal(deal, "qualification")

    with pytest.raises(InvalidChange, match="cancelled: deal moved to Qualification"):
        conveyor.complete_task(task.id)
    assert _tasks(conveyor, deal)["Зателефонувати новому ліду Acme"][0] == "cancelled"


@pytest.mark.parametrize(
    ("action", "value", "message"),
    [
        (0, True, "only a task or a notification can stay open"),
        (1, "yes", "valid boolean"),
    ],
    ids=["not-a-task-action", "not-a-boolean"],
)
def test_keep_after_stage_exit_is_checked_with_its_json_path(action, value, message):
    with open("sample_rules/techflow.json", encoding="utf-8") as f:
        doc = json.load(f)
    index = next(i for i, r in enumerate(doc["rules"]) if r["id"] == "assign_new_lead")
    doc["rules"][index]["actions"][action]["keep_after_stage_exit"] = value

    with pytest.raises(RuleSetInvalid) as err:
        validate_document(doc, known_funnels=["project_work"])

    paths = [p.path for p in err.value.problems]
    assert f"rules[{index}].actions[{action}].keep_after_stage_exit" in paths
    assert message in str(err.value)

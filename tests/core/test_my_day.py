"""A manager's day: their tasks due today and overdue, their deals that need them, nobody else's."""

from __future__ import annotations

from datetime import timedelta

from engine.outbox.dispatcher import run_until_idle


def _ids(conveyor):
    return {m.name: m.id for m in conveyor.deals.managers()}


def _lead_in_proposal(conveyor, title="Acme"):
    deal = conveyor.create_deal("techflow", title=title, fields={"phone": "+380501234567"})
    run_until_idle(conveyor)
    conveyor.move_deal(deal, "qualification")
    conveyor.update_deal(deal, {"budget": "yes", "authority": "yes", "need": "yes"})
    conveyor.move_deal(deal, "proposal")
    conveyor.record_event(deal, "proposal_attached", data={"url": "https://example.com/p.pdf"})
    run_until_idle(conveyor)
    return deal


def test_my_day_holds_my_tasks_due_today_and_overdue_and_not_my_colleagues(conveyor, clock):
    first = conveyor.create_deal("techflow", title="First")  # round robin: Olena
    second = conveyor.create_deal("techflow", title="Second")  # Petro
    run_until_idle(conveyor)
    olena = _ids(conveyor)["Olena"]

    day = conveyor.day.of(olena)
    assert [(t.deal_id, t.overdue) for t in day.today] == [(first, False)]
    assert day.overdue == []

    clock.advance(timedelta(hours=3))  # "Call the new lead" was due in 2 h
    day = conveyor.day.of(olena)
    assert [(t.title, t.overdue) for t in day.overdue] == [
        ("Call the new lead First", True)  # in the reader's English (the rule writes both)
    ]
    assert day.today == []
    team = conveyor.day.of(None)
    assert {t.deal_id for t in team.overdue} == {first, second}


def test_a_cancelled_task_leaves_the_day(conveyor, clock):
    deal = conveyor.create_deal("techflow", title="Moved on")
    run_until_idle(conveyor)
    clock.advance(timedelta(hours=3))
    olena = _ids(conveyor)["Olena"]
    assert len(conveyor.day.of(olena).overdue) == 1

    conveyor.move_deal(deal, "qualification")

    assert conveyor.day.of(olena).overdue == []


def test_a_deal_needs_me_when_the_client_opened_the_proposal_until_i_call(conveyor, clock):
    deal = _lead_in_proposal(conveyor)
    olena = _ids(conveyor)["Olena"]
    clock.advance(timedelta(hours=2))
    conveyor.record_event(deal, "proposal_opened")  # the event the proposal's link declares
    clock.advance(timedelta(hours=1))

    needs = {n.deal_id: n for n in conveyor.day.of(olena).deals}[deal]
    opened = [r.text for r in needs.reasons if r.kind == "opened"]
    assert opened == ["Client opened the proposal 1 h ago; nobody has called since"]

    conveyor.record_activity(deal, "call", "Agreed the scope")
    reasons = {n.deal_id: n for n in conveyor.day.of(olena).deals}.get(deal)
    assert reasons is None or not [r for r in reasons.reasons if r.kind == "opened"]


def test_a_deal_needs_me_when_the_next_stage_waits_for_fields(conveyor):
    deal = _lead_in_proposal(conveyor)
    olena = _ids(conveyor)["Olena"]

    needs = {n.deal_id: n for n in conveyor.day.of(olena).deals}[deal]
    guard = [r.text for r in needs.reasons if r.kind == "guard"]
    assert len(guard) == 1 and guard[0].startswith("To move to Contract, fill in: ")
    assert "tax id" in guard[0].lower()

    conveyor.update_deal(
        deal, {"company_name": "Acme LLC", "tax_id": "32855961", "billing_address": "Kyiv"}
    )
    after = {n.deal_id: n for n in conveyor.day.of(olena).deals}.get(deal)
    assert after is None or not [r for r in after.reasons if r.kind == "guard"]


def test_a_deal_nobody_touched_for_a_day_needs_me(conveyor, clock):
    deal = conveyor.create_deal("techflow", title="Quiet")
    run_until_idle(conveyor)
    olena = _ids(conveyor)["Olena"]
    assert deal not in {n.deal_id for n in conveyor.day.of(olena).deals}

    clock.advance(timedelta(hours=25))

    needs = {n.deal_id: n for n in conveyor.day.of(olena).deals}[deal]
    assert [r.text for r in needs.reasons if r.kind == "idle"] == ["No activity for 25 h"]
    assert deal not in {n.deal_id for n in conveyor.day.of(_ids(conveyor)["Petro"]).deals}

"""The TechFlow funnel end to end on a SQLite file, through the public API."""

from __future__ import annotations

from datetime import timedelta

from engine.outbox.dispatcher import run_until_idle
from storage import repositories as repo
from tests.support.sessions import db_session


def test_a_lead_walks_the_whole_funnel_to_project_work(conveyor, clock):
    deal = conveyor.create_deal(
        "techflow", title="Acme", fields={"phone": "+380501234567", "amount": 1000}
    )
    run_until_idle(conveyor)
    conveyor.move_deal(deal, "qualification")
    conveyor.update_deal(deal, {"budget": "yes", "authority": "yes", "need": "yes"})
    conveyor.move_deal(deal, "proposal")
    conveyor.record_event(deal, "proposal_attached")
    conveyor.update_deal(
        deal, {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}
    )
    conveyor.move_deal(deal, "contract")
    run_until_idle(conveyor)
    clock.advance(timedelta(hours=3))
    conveyor.record_event(deal, "payment_received", data={"amount": 1000})
    executed = run_until_idle(conveyor)

    state = conveyor.deal(deal)
    assert state.stage == "paid"
    assert state.invoice_number == "INV-2026-00001"
    assert [(e.rule_id, e.action) for e in executed] == [
        ("payment_to_paid", "move_to_stage"),
        ("paid_start_project", "start_process"),
        ("kickoff_meeting", "create_task"),
    ]
    with db_session(conveyor) as s:
        messages = repo.list_messages(s, deal)
        child = repo.get_deal_by_key(s, f"{state.key}/project_work")
    assert [m.text for m in messages] == [
        "Acme LLC: будь ласка, сплатіть 1000 грн за рахунком INV-2026-00001 (TechFlow). "
        "Реквізити: techflow.example/pay/INV-2026-00001"  # the funnel's language is Ukrainian
    ]
    assert child is not None and child.parent_deal_id == deal and child.stage == "kickoff"

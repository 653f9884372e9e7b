"""The deal view (``Listings.deal``, what the API answers a change with) read with three Core
statements shows exactly what the ORM's reads of the same rows show."""

from __future__ import annotations

from engine.core.listings import DealView, FiringRow, TaskRow
from engine.core.queries import deal_state
from engine.outbox.dispatcher import run_until_idle
from storage import repositories as repo
from tests.support.sessions import db_read_session, db_session


def _orm_view(conveyor, key: str) -> DealView:
    """The view as the ORM read it before (six queries): the reference to compare with."""
    rulesets = conveyor.ruleset("techflow")
    with db_read_session(conveyor) as s:
        deal = repo.get_deal_by_key(s, key)
        names = repo.manager_names(s)
        manager = names.get(deal.manager_id) if deal.manager_id else None
        state = deal_state(deal, manager)
        stage = rulesets.stage(deal.stage)
        tasks = [
            TaskRow(
                t.id,
                key,
                t.kind,
                t.title,
                t.priority,
                t.status,
                names.get(t.manager_id) if t.manager_id else None,
                t.due_at,
                t.created_at,
                t.done_at,
                t.closed_reason,
            )
            for t in repo.list_tasks(s, status="open", deal_id=deal.id)
        ]
        firings = [
            FiringRow(f.rule_id, f.rule_name, f.fired_at, f.trigger, dict(f.values or {}))
            for f in reversed(repo.list_firings(s, deal_id=deal.id))
        ]
        return DealView(
            deal.key,
            deal.funnel_id,
            deal.stage,
            stage.name if stage else deal.stage,
            bool(deal.closed),
            state.title,
            state.phone,
            state.email,
            state.amount,
            manager,
            state.fields,
            state.signals,
            deal.invoice_number,
            deal.created_at,
            deal.updated_at,
            tasks,
            firings,
        )


def test_the_deal_view_shows_what_the_orm_reads_show(conveyor):
    deal = conveyor.create_deal(
        "techflow", title="Acme", fields={"phone": "+380501234567", "amount": 1200}
    )
    run_until_idle(conveyor)
    conveyor.move_deal(deal, "qualification")
    conveyor.update_deal(deal, {"budget": "yes", "authority": "yes", "need": "yes"})
    conveyor.move_deal(deal, "proposal")
    conveyor.record_event(deal, "proposal_attached", data={"url": "https://example.com/p"})
    run_until_idle(conveyor)
    key = conveyor.deal(deal).key

    view = conveyor.listings.deal(key, actor="system")

    assert view.open_tasks and view.firings and view.manager  # the case covers every part
    assert view == _orm_view(conveyor, key)


def test_a_deal_without_a_manager_or_firings_has_an_empty_view(conveyor):
    deal = conveyor.create_deal("techflow", title="Quiet")
    key = conveyor.deal(deal).key
    with db_session(conveyor) as s:
        repo.get_deal_by_key(s, key).manager_id = None
        s.commit()

    assert conveyor.listings.deal(key, actor="system") == _orm_view(conveyor, key)

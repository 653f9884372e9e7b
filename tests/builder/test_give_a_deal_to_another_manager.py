"""The deal card (AppTest, demo database): an owner gives a deal to another active manager with the
"Manager" select and "Give to" (only active managers offered); a manager sees who has the deal but
no control to change it."""

from __future__ import annotations

from engine.core.conveyor import Conveyor
from tests.builder.support import errors, plain, session_app, signed_in


def _a_deal_of(demo_db: Conveyor, manager_id: int) -> int:
    board = demo_db.reports.deal_board("techflow")
    return next(
        int(d) for d in board["id"].tolist() if demo_db.deal(int(d)).manager_id == manager_id
    )


def test_an_owner_gives_a_deal_to_another_manager_on_its_card(demo_db: Conveyor) -> None:
    active = [m for m in demo_db.deals.managers() if m.active]
    giver, taker = active[0], active[1]
    deal = _a_deal_of(demo_db, giver.id)
    at = session_app("deals", "owner").run()
    at.selectbox(key="deals_selected").set_value(deal).run()
    assert not at.exception and not at.error, errors(at)
    assert at.button(key=f"deals_give_{deal}").disabled  # already theirs

    at.selectbox(key=f"deals_give_to_{deal}").set_value(taker.name).run()
    at.button(key=f"deals_give_{deal}").click().run()

    assert not at.exception and not at.error, errors(at)
    assert demo_db.deal(deal).manager_id == taker.id
    assert f"Deal given to {taker.name}." in plain(" ".join(s.value for s in at.success))
    tasks = demo_db.reports.deal_card(deal).tasks
    assert set(tasks[tasks["status"] == "open"]["manager"]) <= {taker.name}


def test_a_deactivated_manager_is_not_offered(demo_db: Conveyor) -> None:
    active = [m for m in demo_db.deals.managers() if m.active]
    deal = _a_deal_of(demo_db, active[0].id)
    demo_db.deals.set_manager_active(active[1].id, False)
    at = session_app("deals", "owner").run()
    at.selectbox(key="deals_selected").set_value(deal).run()

    assert not at.exception and not at.error, errors(at)
    offered = at.selectbox(key=f"deals_give_to_{deal}").options
    assert active[1].name not in offered and active[0].name in offered


def test_a_manager_sees_the_manager_but_cannot_give_the_deal_away(demo_db: Conveyor) -> None:
    me = signed_in("manager")
    deal = _a_deal_of(demo_db, me.manager_id)
    at = session_app("deals", "manager").run()
    at.selectbox(key="deals_selected").set_value(deal).run()

    assert not at.exception and not at.error, errors(at)
    assert not [b for b in at.button if b.key == f"deals_give_{deal}" or b.label == "Give to"]
    assert not [s for s in at.selectbox if s.key == f"deals_give_to_{deal}"]
    assert me.name in plain(" ".join(m.value for m in at.markdown))

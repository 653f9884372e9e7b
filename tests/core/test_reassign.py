"""Giving a deal to another manager: owner only, through the deal's change path (history, trail),
its open tasks go with it, and an unknown, deactivated or same manager is refused by name."""

from __future__ import annotations

import pytest

from engine.errors import Forbidden, InvalidChange
from engine.outbox.dispatcher import run_until_idle
from storage import repositories as repo
from tests.support.sessions import db_session

PASSWORD = "reassign test password"


def _deal(conveyor, manager="Olena"):
    deal = conveyor.create_deal(
        "techflow", title="Acme", fields={"phone": "+380501112233"}, manager=manager
    )
    run_until_idle(conveyor)
    return deal


def _open_task_managers(conveyor, deal):
    with db_session(conveyor) as s:
        names = repo.manager_names(s)
        return {names.get(t.manager_id) for t in repo.list_tasks(s, deal_id=deal, status="open")}


def _manager_id(conveyor, name):
    return next(m.id for m in conveyor.deals.managers() if m.name == name)


def test_the_owner_gives_a_deal_and_its_open_tasks_to_another_manager(conveyor):
    deal = _deal(conveyor)
    assert _open_task_managers(conveyor, deal) == {"Olena"}

    conveyor.deals.reassign(deal, "Petro", actor="boss")

    assert conveyor.deal(deal).manager_id == _manager_id(conveyor, "Petro")
    assert _open_task_managers(conveyor, deal) == {"Petro"}
    card = conveyor.reports.deal_card(deal)
    assert "Olena → Petro" in card.events.iloc[-1]["what"]
    trail = [(e.actor, e.kind) for e in conveyor.audit.entries(deal_id=deal)]
    assert ("boss", "deal_reassigned") in trail


def test_a_deactivated_managers_deal_goes_to_an_active_one(conveyor):
    deal = _deal(conveyor)
    conveyor.deals.set_manager_active(_manager_id(conveyor, "Olena"), False)
    conveyor.deals.reassign(deal, "Petro")
    assert conveyor.deal(deal).manager_id == _manager_id(conveyor, "Petro")


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        ("Petra", InvalidChange, "no manager named 'Petra'; did you mean 'Petro'"),
        ("", InvalidChange, "name the manager"),
    ],
    ids=["unknown", "empty"],
)
def test_a_bad_manager_is_refused_by_name_and_changes_nothing(conveyor, name, error, match):
    deal = _deal(conveyor)
    events = len(conveyor.reports.deal_card(deal).events)
    with pytest.raises(error, match=match):
        conveyor.deals.reassign(deal, name)
    assert conveyor.deal(deal).manager_id == _manager_id(conveyor, "Olena")
    assert len(conveyor.reports.deal_card(deal).events) == events


def test_giving_a_deal_to_its_own_manager_writes_nothing(conveyor):
    deal = _deal(conveyor)
    events = len(conveyor.reports.deal_card(deal).events)
    assert conveyor.deals.reassign(deal, "Olena") is False
    assert len(conveyor.reports.deal_card(deal).events) == events
    assert conveyor.deals.reassign(deal, "Petro") is True


def test_a_deactivated_manager_is_refused(conveyor):
    deal = _deal(conveyor)
    conveyor.deals.set_manager_active(_manager_id(conveyor, "Petro"), False)
    with pytest.raises(InvalidChange, match="'Petro' is deactivated"):
        conveyor.deals.reassign(deal, "Petro")


@pytest.mark.parametrize("role", ["manager", "viewer"])
def test_only_the_owner_gives_deals_away(conveyor, role):
    deal = _deal(conveyor)
    conveyor.users.add("Olena", role, PASSWORD, actor="test")
    olena = conveyor.users.sign_in("Olena", PASSWORD).actor
    with pytest.raises(Forbidden, match="may not give deals to another manager"):
        conveyor.deals.reassign(deal, "Petro", actor=olena)
    assert conveyor.deal(deal).manager_id == _manager_id(conveyor, "Olena")


def test_the_new_manager_owns_the_deal_after_it(conveyor):
    deal = _deal(conveyor)
    for name in ("Olena", "Petro"):
        conveyor.users.add(name, "manager", PASSWORD, actor="test")
    olena, petro = (conveyor.users.sign_in(n, PASSWORD).actor for n in ("Olena", "Petro"))
    if olena.sees_team:
        pytest.skip("managers see the whole team by default here")
    conveyor.deals.reassign(deal, "Petro")
    conveyor.record_activity(deal, "call", "took it over", actor=petro)
    with pytest.raises(Forbidden, match="assigned to another manager"):
        conveyor.record_activity(deal, "call", "", actor=olena)

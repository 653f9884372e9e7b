"""Roles checked in the core, below every page: what an owner, a manager and a viewer may change and
read, with no builder involved. A refused change changes nothing."""

from __future__ import annotations

import pytest

from engine.core.access import Actor, ActorKind, Role
from engine.errors import Forbidden

PASSWORD = "role test password"


@pytest.fixture
def people(conveyor):
    """Signed-in actors: the owner, Olena and Petro (managers; the conftest's managers rows), a viewer."""
    for name, role in (
        ("boss", "owner"),
        ("Olena", "manager"),
        ("Petro", "manager"),
        ("eye", "viewer"),
    ):
        conveyor.users.add(name, role, PASSWORD, actor="test")
    return {
        name: conveyor.users.sign_in(name, PASSWORD).actor
        for name in ("boss", "Olena", "Petro", "eye")
    }


def _deal(conveyor, manager: str) -> int:
    deal = conveyor.create_deal(
        "techflow", title=f"{manager}'s lead", fields={"phone": "+380501112233"}, manager=manager
    )
    conveyor.dispatcher.run_until_idle()
    return deal


def _open_task(conveyor, deal: int) -> int:
    return next(t.id for t in conveyor.queries.tasks(deal) if t.status == "open")


def test_a_manager_changes_their_own_deals_and_tasks(conveyor, people):
    olena = people["Olena"]
    deal = _deal(conveyor, "Olena")
    conveyor.update_deal(deal, {"amount": 1000}, actor=olena)
    conveyor.complete_task(_open_task(conveyor, deal), actor=olena)
    conveyor.move_deal(deal, "cold_call", actor=olena)
    conveyor.record_activity(deal, "call", "spoke to them", actor=olena)
    state = conveyor.deal(deal)
    assert (state.stage, state.amount) == ("cold_call", 1000)
    history = [(e.actor, e.kind) for e in conveyor.audit.entries(deal_id=deal)]
    assert ("Olena", "deal_moved") in history and ("Olena", "task_completed") in history


@pytest.mark.parametrize(
    "change",
    [
        lambda c, d, a: c.update_deal(d, {"amount": 1}, actor=a),
        lambda c, d, a: c.move_deal(d, "cold_call", actor=a),
        lambda c, d, a: c.record_activity(d, "call", "", actor=a),
        lambda c, d, a: c.complete_task(_open_task(c, d), actor=a),
    ],
    ids=["update", "move", "activity", "complete-task"],
)
def test_a_manager_cannot_change_another_managers_deal_and_nothing_changes(
    conveyor, people, change
):
    deal = _deal(conveyor, "Petro")
    before = conveyor.deal(deal)
    tasks = conveyor.queries.tasks(deal)
    with pytest.raises(Forbidden, match="assigned to another manager"):
        change(conveyor, deal, people["Olena"])
    assert conveyor.deal(deal) == before and conveyor.queries.tasks(deal) == tasks


def test_a_manager_who_sees_the_team_may_change_any_deal(conveyor, people):
    deal = _deal(conveyor, "Petro")
    conveyor.users.update("Olena", sees_team=True, actor="test")
    olena = conveyor.users.sign_in("Olena", PASSWORD).actor
    conveyor.update_deal(deal, {"amount": 5}, actor=olena)
    assert conveyor.deal(deal).amount == 5
    assert len(conveyor.reports.deal_board("techflow", actor=olena)) == 1


def test_a_managers_new_deal_is_theirs_and_not_someone_elses(conveyor, people):
    deal = conveyor.create_deal("techflow", title="Walk-in", actor=people["Olena"])
    assert conveyor.deal(deal).manager_name == "Olena"
    with pytest.raises(Forbidden, match="for themselves only"):
        conveyor.create_deal("techflow", title="For Petro", manager="Petro", actor=people["Olena"])


def test_a_manager_reads_only_their_own_deals_tasks_and_actions(conveyor, people):
    mine, theirs = _deal(conveyor, "Olena"), _deal(conveyor, "Petro")
    olena = people["Olena"]
    assert conveyor.reports.deal_board("techflow", actor=olena)["id"].tolist() == [mine]
    assert set(conveyor.reports.task_queue(actor=olena)["deal_id"]) == {mine}
    assert set(conveyor.reports.action_log(actor=olena)["deal_id"]) == {mine}
    assert conveyor.reports.deal_card(mine, actor=olena).state.key
    with pytest.raises(Forbidden):
        conveyor.reports.deal_card(theirs, actor=olena)
    # The owner and the viewer read everything.
    for name in ("boss", "eye"):
        assert set(conveyor.reports.deal_board("techflow", actor=people[name])["id"]) == {
            mine,
            theirs,
        }


@pytest.mark.parametrize("who", ["Olena", "eye"], ids=["manager", "viewer"])
def test_only_the_owner_saves_and_activates_rule_sets(conveyor, people, who):
    doc = conveyor.ruleset("techflow").to_document()
    versions = conveyor.versions("techflow")
    with pytest.raises(Forbidden, match="may not save and activate rule sets"):
        conveyor.save_ruleset(doc, comment="mine now", actor=people[who])
    with pytest.raises(Forbidden):
        conveyor.activate("techflow", 1, actor=people[who])
    assert conveyor.versions("techflow") == versions


def test_a_viewer_changes_nothing(conveyor, people):
    deal = _deal(conveyor, "Olena")
    eye = people["eye"]
    for change in (
        lambda: conveyor.create_deal("techflow", title="x", actor=eye),
        lambda: conveyor.update_deal(deal, {"amount": 1}, actor=eye),
        lambda: conveyor.move_deal(deal, "cold_call", actor=eye),
        lambda: conveyor.complete_task(_open_task(conveyor, deal), actor=eye),
        lambda: conveyor.record_activity(deal, actor=eye),
        lambda: conveyor.api_keys.create("k", "owner", actor=eye),
    ):
        with pytest.raises(Forbidden, match="the viewer role may not"):
            change()
    assert conveyor.audit.entries(deal_id=deal, actor_name="eye") == []


def test_the_author_of_a_version_is_the_signed_in_user_whatever_the_page_says(conveyor, people):
    doc = conveyor.ruleset("techflow").to_document()
    doc["description"] = "edited by the boss"
    info = conveyor.save_ruleset(doc, comment="v2", author="owner", actor=people["boss"])
    assert info.author == "boss"
    conveyor.activate("techflow", 1, actor=people["boss"])
    trail = [(e.actor, e.kind, e.subject) for e in conveyor.audit.entries(actor_name="boss")]
    assert trail[:2] == [
        ("boss", "version_activated", "techflow v1"),
        ("boss", "version_saved", f"techflow v{info.version}"),
    ]


def test_engine_changes_name_the_rule_that_made_them(conveyor, people):
    deal = conveyor.create_deal("techflow", title="Unassigned", actor=people["boss"])
    conveyor.dispatcher.run_until_idle()
    assigned = [e for e in conveyor.audit.entries(deal_id=deal) if e.kind == "manager_assigned"]
    assert [(e.actor_kind, e.actor) for e in assigned] == [("engine", "engine:assign_new_lead")]


def test_an_api_key_is_named_in_the_trail(conveyor):
    key = Actor(ActorKind.API_KEY, "website", Role.INTEGRATION)
    deal = conveyor.create_deal("techflow", title="From the site", actor=key)
    assert [(e.actor, e.kind) for e in conveyor.audit.entries(deal_id=deal)][-1] == (
        "key:website",
        "deal_created",
    )

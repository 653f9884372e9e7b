"""The Designer's canvas and its ids from names, through AppTest and the canvas' edit functions.

The browser gestures themselves are in tests/e2e/test_canvas_edits_in_a_browser.py; here the page's
widgets (insert a stage after X, add a stage, a new rule) and the document edits a gesture makes are
checked against the saved versions in the database.
"""

from __future__ import annotations

import copy

import pytest

from benchmarks.designer import big_funnel
from builder.canvas.edits import (
    EditRefused,
    add_transition,
    insert_stage_after,
    move_node,
    remove_transition,
)
from builder.canvas.elements import canvas_elements, wrap_words
from builder.canvas.layout import ensure_positions, free_rule_slot
from builder.components import RuleData
from engine.core.conveyor import Conveyor
from engine.document.validate import rule_data, validate_document
from tests.builder.support import by_label, errors, session_app


def _techflow(c: Conveyor) -> dict:
    doc = c.ruleset("techflow").to_document()
    ensure_positions(doc)
    return doc


def _stage(doc: dict, sid: str) -> dict:
    return next(s for s in doc["stages"] if s["id"] == sid)


def test_insert_after_qualification_derives_the_id_and_saves_it_between_qualification_and_proposal(
    demo_db: Conveyor,
) -> None:
    before = len(demo_db.versions("techflow"))
    at = session_app("designer").run()
    by_label(at.selectbox, "Edit").select("stage:qualification").run()
    by_label(at.text_input, "New stage name").input("Демо-дзвінок").run()
    assert (
        by_label(at.text_input, "New stage id").value == "demo_dzvinok"
    )  # shown, derived from the name
    by_label(at.button, "Insert stage").click().run()
    assert not at.exception and not at.error, errors(at)
    assert any(
        "Inserted stage Демо-дзвінок after Qualification — saved as version" in s.value
        for s in at.success
    )
    rs = demo_db.ruleset("techflow")
    assert len(demo_db.versions("techflow")) == before + 1
    moves = {(t.from_, t.to) for t in rs.transitions}
    assert {("qualification", "demo_dzvinok"), ("demo_dzvinok", "proposal")} <= moves
    assert ("qualification", "proposal") not in moves
    assert {
        ("qualification", "cold_call"),
        ("demo_dzvinok", "cold_call"),
    } <= moves  # still losable at both
    ids = [s.id for s in rs.stages]
    assert ids.index("qualification") + 1 == ids.index("demo_dzvinok")
    assert by_label(at.selectbox, "Edit").value == "stage:demo_dzvinok"  # its editor opens


def test_the_derived_id_can_be_edited_and_a_taken_or_invalid_one_is_refused(
    demo_db: Conveyor,
) -> None:
    at = session_app("designer").run()
    by_label(at.selectbox, "Edit").select("stage:qualification").run()
    by_label(at.text_input, "New stage name").input("Пропозиція").run()
    assert by_label(at.text_input, "New stage id").value == "propozytsiia"
    by_label(at.text_input, "New stage id").input("proposal").run()  # taken
    assert any("already exists" in c.value for c in at.caption)
    versions = len(demo_db.versions("techflow"))
    by_label(at.button, "Insert stage").click().run()
    assert "A stage with id 'proposal' already exists; try 'proposal_2'." in errors(at)
    by_label(at.text_input, "New stage id").input("2nd offer").run()
    assert any("cannot be an id" in c.value for c in at.caption)
    by_label(at.button, "Insert stage").click().run()
    assert "cannot be an id" in errors(at)
    assert len(demo_db.versions("techflow")) == versions  # refused: nothing saved
    by_label(at.text_input, "New stage id").input("offer").run()
    # Typing another name keeps the owner's own id.
    by_label(at.text_input, "New stage name").input("Пропозиція клієнту").run()
    assert by_label(at.text_input, "New stage id").value == "offer"


def test_add_a_stage_gets_its_id_from_a_ukrainian_name(demo_db: Conveyor) -> None:
    at = session_app("designer").run()
    by_label(at.text_input, "Name").input("Згода клієнта").run()
    assert by_label(at.text_input, "Id").value == "zghoda_kliienta"
    by_label(at.button, "Add stage").click().run()
    assert not at.exception and not at.error, errors(at)
    assert by_label(at.selectbox, "Edit").value == "stage:zghoda_kliienta"


def test_a_new_rule_is_named_for_its_stage_with_an_id_from_that_name_on_a_free_place(
    demo_db: Conveyor,
) -> None:
    at = session_app("designer").run()
    by_label(at.selectbox, "Edit").select("stage:qualification").run()
    by_label(at.button, "+ New rule for this stage").click().run()
    assert not at.exception and not at.error, errors(at)
    assert by_label(at.selectbox, "Edit").value == "rule:qualification_reminder"
    doc = at.session_state["draft:techflow"]
    rule = next(r for r in doc["rules"] if r["id"] == "qualification_reminder")
    assert rule["name"] == "Qualification: reminder"
    others = [n["position"] for n in doc["stages"] + doc["rules"] if n is not rule]
    assert all(
        abs(p["x"] - rule["position"]["x"]) + abs(p["y"] - rule["position"]["y"]) > 30
        for p in others
    )


def test_moving_a_stage_takes_its_rules_along(demo_db: Conveyor) -> None:
    doc = _techflow(demo_db)
    paid = copy.deepcopy(_stage(doc, "paid")["position"])
    rule = next(r for r in doc["rules"] if r["id"] == "paid_start_project")
    at_rule = copy.deepcopy(rule["position"])
    assert move_node(doc, "stage:paid", paid["x"] + 200, paid["y"] - 10) == "Moved stage Paid"
    assert _stage(doc, "paid")["position"] == {"x": paid["x"] + 200, "y": paid["y"] - 10}
    assert rule["position"] == {"x": at_rule["x"] + 200, "y": at_rule["y"] - 10}
    validate_document(doc, known_funnels=["project_work"])


def test_transitions_added_and_removed_and_refusals_change_nothing(demo_db: Conveyor) -> None:
    doc = _techflow(demo_db)
    assert add_transition(doc, "cold_call", "proposal") == "Allowed Cold call (90 days) → Proposal"
    assert {"from": "cold_call", "to": "proposal"} in doc["transitions"]
    same = copy.deepcopy(doc)
    for bad in (("cold_call", "proposal"), ("paid", "paid"), ("paid", "nowhere")):
        with pytest.raises(EditRefused):
            add_transition(doc, *bad)
    assert doc == same
    remove_transition(doc, "cold_call", "proposal")
    assert {"from": "cold_call", "to": "proposal"} not in doc["transitions"]
    with pytest.raises(EditRefused, match="is not a transition"):
        remove_transition(doc, "cold_call", "proposal")


def test_insert_lays_the_row_out_again(demo_db: Conveyor) -> None:
    doc = _techflow(demo_db)
    old = {s["id"]: copy.deepcopy(s["position"]) for s in doc["stages"]}
    sid, _ = insert_stage_after(doc, "qualification", "Демо-дзвінок")
    assert sid == "demo_dzvinok"
    assert _stage(doc, sid)["position"] == old["proposal"]
    for right in ("proposal", "contract", "paid"):
        assert _stage(doc, right)["position"]["x"] == old[right]["x"] + 220
    assert _stage(doc, "cold_call")["position"] == old["cold_call"]  # another row: left alone
    sid2, _ = insert_stage_after(doc, "qualification", "Демо-дзвінок")
    assert sid2 == "demo_dzvinok_2"  # unique, never a generic id
    validate_document(doc, known_funnels=["project_work"])


def test_a_new_rule_never_lands_on_another_node() -> None:
    doc = big_funnel(30, 300)
    ensure_positions(doc)
    spots = [(n["position"]["x"], n["position"]["y"]) for n in doc["stages"] + doc["rules"]]
    assert len(set(spots)) == len(spots)
    rule = copy.deepcopy(doc["rules"][0]) | {"id": "extra"}
    rule.pop("position")
    p = free_rule_slot(doc, rule)
    assert all(abs(p["x"] - x) + abs(p["y"] - y) > 30 for x, y in spots)


def test_thirty_stages_wrap_into_rows_and_labels_break_between_words() -> None:
    doc = big_funnel(30, 300)
    ensure_positions(doc)
    xs = {s["position"]["x"] for s in doc["stages"]}
    ys = {s["position"]["y"] for s in doc["stages"]}
    assert len(xs) == 6 and len(ys) == 5  # 6 to a row: fit-to-view keeps them readable
    assert wrap_words("Cold call (90 days)") == "Cold call (90\ndays)"
    assert (
        wrap_words("Дуже-довгий-етап-без-пробілів короткий")
        == "Дуже-довгий-етап-без-пробілів\nкороткий"
    )
    assert wrap_words("a " * 40, 6, 2).endswith("…")


def test_canvas_labels_and_tooltips_are_plain_text(demo_db: Conveyor) -> None:
    doc = _techflow(demo_db)
    doc["stages"][0]["name"] = "<img src=x onerror=alert(1)> Вхідний\x07 лід"
    rd = RuleData(
        rule_data(None),
        [s["id"] for s in doc["stages"]],
        {s["id"]: s["name"] for s in doc["stages"]},
        [],
    )
    els = canvas_elements(doc, rd, "stage:incoming")
    node = next(n for n in els["nodes"] if n["id"] == "stage:incoming")
    assert "\x07" not in node["label"] and "<img" in node["label"]  # drawn on the canvas as typed
    assert node["title"].startswith("Stage: <img")  # vis-network puts string titles in innerText
    assert (
        node["color"]["highlight"]["background"] == node["color"]["background"]
    )  # selected stays legible
    assert node["borderWidth"] == 4

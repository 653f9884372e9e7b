"""The owner pages of the builder (Designer, Rule editor, Versions) driven through Streamlit's AppTest.

Each test gets its own demo SQLite database; every check ends in the database, read back through the
engine, because the pages may only change anything by saving a new rule-set version.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder.components import RuleData, esc, graph_elements, watched_stage
from engine.core.conveyor import Conveyor
from engine.document.validate import rule_data
from tests.builder.support import by_label, errors, go, session_app, sign_in

ROOT = Path(__file__).resolve().parents[2]
_owner_app, _go, _by_label, _errors = session_app, go, by_label, errors


def test_router_and_every_owner_page_render_on_the_demo_database(demo_db: Conveyor) -> None:
    at = sign_in(AppTest.from_file(str(ROOT / "builder" / "app.py"), default_timeout=30)).run()
    # pages turn failures into red boxes (the error boundary), so both must be empty
    assert not at.exception and not at.error, _errors(at)
    assert at.title[0].value == "🗺️ Funnel designer"  # the designer is the default page
    for page, title in (
        ("designer", "Funnel designer"),
        ("rule_editor", "Rule editor"),
        ("versions", "Versions & import/export"),
    ):
        at = _owner_app(page).run()
        assert not at.exception, f"{page}: {at.exception}"
        assert title in at.title[0].value
        assert not at.error, f"{page}: {_errors(at)}"
    # The main funnel is shown first, with its stages and rules counted.
    at = _owner_app("designer").run()
    assert at.selectbox(key="owner_funnel").value == "techflow"
    assert [m.value for m in at.metric] == ["6", "9", str(len(demo_db.ruleset("techflow").rules))]


def test_create_stage_add_rule_with_condition_builder_save_and_export(demo_db: Conveyor) -> None:
    before = len(demo_db.versions("techflow"))
    at = _owner_app("designer").run()

    # A new stage, reachable from Proposal, added through the designer's form.
    _by_label(at.text_input, "Name").input("Negotiation — переговори")
    _by_label(at.text_input, "Id").input("negotiation")
    _by_label(at.selectbox, "Allow a move into it from").select("proposal")
    _by_label(at.button, "Add stage").click()
    at.run()
    assert not at.exception and not at.error, _errors(at)
    assert _by_label(at.selectbox, "Edit").value == "stage:negotiation"  # its editor opens
    assert any("Stage editor" in m.value for m in at.markdown)
    assert any(
        w.value == "Negotiation — переговори" for w in at.text_input if w.label == "Stage name"
    )

    # A rule for the new stage, then a second condition row through the condition builder.
    _go(at, "rule_editor")
    _by_label(at.selectbox, "Rule").select("__new__").run()
    _by_label(at.selectbox, "Stage it watches").select("negotiation")
    _by_label(at.button, "Create rule").click()
    at.run()
    assert not at.exception, at.exception
    rid = _by_label(at.selectbox, "Rule").value
    assert (
        rid == "negotiation_perehovory_reminder"
    )  # named for its stage, the id from that name (issue 13)
    _by_label(at.button, "+ Condition").click()
    at.run()
    variables = [w for w in at.selectbox if w.label == "Variable"]
    assert len(variables) == 3  # stage, hours in stage, and the new row
    variables[2].select("client_replied").run()
    operators = [w for w in at.selectbox if w.label == "Operator"]
    operators[2].select("is_false").run()
    _by_label(at.text_input, "Name").input("Negotiation: no reply for a day").run()
    assert not at.exception and not _errors(at), _errors(at)
    assert any(
        "“Client replied” has not happened yet" in m.value for m in at.markdown
    )  # reads naturally

    # Save with a comment from the save bar.
    at.text_input(key="owner_comment:rules").input("negotiation stage and its reminder").run()
    at.button(key="owner_save:rules").click().run()
    assert not at.exception and not at.error, _errors(at)
    versions = demo_db.versions("techflow")
    assert len(versions) == before + 1
    latest = max(versions, key=lambda v: v.version)
    assert latest.active and latest.comment == "negotiation stage and its reminder"
    saved = demo_db.ruleset("techflow").to_document()
    stage = next(s for s in saved["stages"] if s["id"] == "negotiation")
    assert (
        stage["name"] == "Negotiation — переговори"
        and stage["kind"] == "open"
        and "position" in stage
    )
    assert {"from": "proposal", "to": "negotiation"} in saved["transitions"]
    rule = next(r for r in saved["rules"] if r["id"] == rid)
    assert rule["name"] == "Negotiation: no reply for a day"
    assert rule["conditions"] == {
        "all": [
            {"name": "stage", "operator": "equal_to", "value": "negotiation"},
            {"name": "hours_in_stage", "operator": "greater_than_or_equal_to", "value": 24},
            {"name": "client_replied", "operator": "is_false", "value": None},
        ]
    }
    assert rule["actions"] == [
        {
            "name": "notify_manager",
            "params": {"text": "Deal {title} needs attention", "priority": "normal"},
        }
    ]
    # Every rule got a stored position, so the layout is stable from now on.
    assert all("position" in r for r in saved["rules"])

    # Export: the preview of the download is the saved document, and the bare list is business-rules'.
    _go(at, "versions")
    assert not at.exception
    assert at.get("download_button"), "no download button on the export tab"
    exported = json.loads(next(c.value for c in at.code if c.language == "json"))
    assert exported == saved
    at.radio(key="versions:techflow:fmt").set_value("business-rules").run()
    bare = json.loads(next(c.value for c in at.code if c.language == "json"))
    assert bare == json.loads(demo_db.rulesets.export("techflow", "business-rules"))
    assert {"conditions": rule["conditions"], "actions": rule["actions"]} in bare


def test_invalid_import_shows_every_error_with_its_path_and_saves_nothing(
    demo_db: Conveyor,
) -> None:
    doc = demo_db.ruleset("techflow").to_document()
    doc["rules"][1]["conditions"]["all"][1]["operator"] = "greater_then"
    doc["rules"][0]["actions"][1]["params"]["priority"] = "urgent"
    doc["transitions"].append({"from": "incoming", "to": "nowhere"})
    before = {f: len(demo_db.versions(f)) for f, _ in demo_db.funnels()}

    at = _owner_app("versions").run()
    at.get("file_uploader")[0].set_value(
        ("broken.json", json.dumps(doc).encode(), "application/json")
    )
    at.run()
    assert not at.exception
    assert "broken.json is not valid — nothing was saved" in _errors(at)
    table = at.dataframe[-1].value
    paths = list(table["JSON path"])
    assert "rules[1].conditions.all[1].operator" in paths
    assert "rules[0].actions[1].params.priority" in paths
    assert "transitions[9].to" in paths
    assert any("did you mean 'greater_than'" in m for m in table["Problem"])
    assert not [b for b in at.button if b.label == "Save imported version"]
    assert {f: len(demo_db.versions(f)) for f, _ in demo_db.funnels()} == before

    # Not JSON at all: the parser's line and column, still nothing saved.
    at.get("file_uploader")[0].set_value(None)
    at.text_area(key="versions:paste").input('{"funnel": "techflow",').run()
    assert "not valid JSON" in at.dataframe[-1].value["Problem"][0]
    assert {f: len(demo_db.versions(f)) for f, _ in demo_db.funnels()} == before


def test_changing_the_24h_reminder_to_12h_and_saving_creates_a_new_version(
    demo_db: Conveyor,
) -> None:
    before = demo_db.versions("techflow")
    at = _owner_app("rule_editor").run()
    _by_label(at.selectbox, "Rule").select("incoming_idle_24h").run()
    assert any("after 24 h without manager activity" in m.value for m in at.markdown)
    hours = [w for w in at.number_input if w.value == 24]
    assert len(hours) == 1
    hours[0].set_value(12).run()
    assert not at.exception
    assert any("Unsaved changes" in w.value for w in at.warning)
    assert any("after 12 h without manager activity" in m.value for m in at.markdown)
    at.text_input(key="owner_comment:rules").input("remind after 12 h").run()
    at.button(key="owner_save:rules").click().run()
    assert not at.exception and not at.error, _errors(at)

    after = demo_db.versions("techflow")
    assert len(after) == len(before) + 1
    new = max(after, key=lambda v: v.version)
    assert new.active and new.comment == "remind after 12 h"
    rule = demo_db.ruleset("techflow").rule("incoming_idle_24h")
    assert rule.conditions.all[1].model_dump() == {
        "name": "hours_since_last_activity",
        "operator": "greater_than_or_equal_to",
        "value": 12,
    }
    # The old version is untouched and can be made active again from the Versions page.
    old = max(before, key=lambda v: v.version).version
    assert demo_db.ruleset("techflow", old).rule("incoming_idle_24h").conditions.all[1].value == 24
    _go(at, "versions")
    assert any("remind after 12 h" in str(df.value) for df in at.dataframe)
    # The picker starts on the newest version that is not active, with Make active enabled for it.
    assert at.selectbox(key="versions:techflow:activate").value == old
    assert not at.button(key="versions:techflow:go").disabled
    at.selectbox(key="versions:techflow:activate").select(new.version).run()
    assert at.button(key="versions:techflow:go").disabled  # the active version is already active
    at.selectbox(key="versions:techflow:activate").select(old).run()
    at.button(key="versions:techflow:go").click().run()
    assert not at.exception
    assert next(v for v in demo_db.versions("techflow") if v.active).version == old


def test_a_rule_with_errors_cannot_be_saved_and_the_message_names_the_row(
    demo_db: Conveyor,
) -> None:
    at = _owner_app("rule_editor").run()
    _by_label(at.selectbox, "Rule").select("qualification_no").run()
    # The stage row (1) keeps "equal_to"; an empty text makes row 1 of a new text condition invalid.
    _by_label(at.text_input, "Id").input("Bad Id").run()
    assert any("id" in e.value and "not a valid rule id" in e.value for e in at.error)
    assert at.button(key="owner_save:rules").disabled
    versions = len(demo_db.versions("techflow"))
    # Fix the id, break an action parameter instead: the error names the action row.
    _by_label(at.text_input, "Id").input("qualification_no").run()
    text_inputs = [w for w in at.text_input if w.label == "Text"]
    assert not text_inputs  # move_to_stage has no text; add a notify action and empty its text
    _by_label(at.button, "+ Action").click().run()
    _by_label(at.text_input, "Text").input("   ").run()
    messages = _errors(at)
    assert "Action 2: text is empty" in messages
    assert "action 2 — text: text is empty" in messages
    assert at.button(key="owner_save:rules").disabled
    assert len(demo_db.versions("techflow")) == versions


def test_deleting_a_stage_that_rules_and_deals_use_is_refused_with_the_list(
    demo_db: Conveyor,
) -> None:
    at = _owner_app("designer").run()
    _by_label(at.selectbox, "Edit").select("stage:incoming").run()
    _by_label(at.button, "🗑️ Delete stage").click().run()
    msg = _errors(at)
    assert "cannot be deleted while these refer to it" in msg
    assert "rule 'New lead: assign a manager and a first task' (rules[0])" in msg
    assert "the funnel's initial stage" in msg and "deal(s)" in msg
    assert "transition" not in msg  # its own transitions would go with it
    # An unused stage goes, with its transitions; the draft is unsaved until Save.
    _by_label(at.text_input, "Name").input("Parking")
    _by_label(at.text_input, "Id").input("parking")
    _by_label(at.selectbox, "Allow a move into it from").select("incoming")
    _by_label(at.button, "Add stage").click()
    at.run()
    _by_label(at.button, "🗑️ Delete stage").click().run()
    assert not at.error, _errors(at)
    assert _by_label(at.selectbox, "Edit").value == ""
    assert all("parking" not in o for o in _by_label(at.selectbox, "Edit").options)
    assert any("No unsaved changes" in s.value for s in at.success)


def test_graph_escapes_user_text_in_node_titles_and_hangs_rules_on_their_stage(
    demo_db: Conveyor,
) -> None:
    doc = demo_db.ruleset("techflow").to_document()
    doc["stages"][0]["name"] = '<img src=x onerror="alert(1)">'
    doc["rules"][0]["name"] = "<script>alert(2)</script>"
    rs = demo_db.ruleset("techflow")
    rd = RuleData(
        rule_data(rs),
        [s["id"] for s in doc["stages"]],
        {s["id"]: s["name"] for s in doc["stages"]},
        ["techflow", "project_work"],
    )
    nodes, edges = graph_elements(doc, rd)
    titles = " ".join(n.title for n in nodes)
    assert (
        "<" not in titles and ">" not in titles
    )  # no markup at all reaches the component's innerHTML
    assert esc('<img src=x onerror="alert(1)">') in titles
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in titles
    # Titles start with a fixed word, never with user text (the component window.open()s a title).
    assert all(n.title.startswith(("Stage: ", "Rule: ")) for n in nodes)
    pairs = {(e.source, e.to) for e in edges}
    assert ("rule:incoming_idle_24h", "stage:incoming") in pairs  # watches its stage
    assert ("rule:qualification_no", "stage:cold_call") in pairs  # moves deals there
    assert watched_stage(doc["rules"][1]) == "incoming"


def test_renaming_a_stage_to_blank_is_shown_in_its_editor_and_blocks_saving(
    demo_db: Conveyor,
) -> None:
    at = _owner_app("designer").run()
    _by_label(at.selectbox, "Edit").select("stage:proposal").run()
    # The sample funnel names its stages per language: one box each, checked each on its own path.
    _by_label(at.text_input, "Stage name (en)").input("   ").run()
    assert "name.en: stage name is empty" in _errors(at)
    assert at.button(key="owner_save:designer").disabled
    _by_label(at.text_input, "Stage name (en)").input("Пропозиція").run()
    assert not at.error, _errors(at)
    # The picker's labels changed with the name; the editor stays on the same stage.
    assert _by_label(at.selectbox, "Edit").value == "stage:proposal"
    assert any(o.endswith("Stage: Пропозиція") for o in _by_label(at.selectbox, "Edit").options)
    at.button(key="owner_save:designer").click().run()
    assert demo_db.ruleset("techflow").stage("proposal").name == "Пропозиція"
    assert demo_db.ruleset("techflow").stage("proposal").name.texts == {
        "uk": "Комерційна пропозиція",
        "en": "Пропозиція",
    }


def test_valid_import_is_saved_once_as_a_new_version(demo_db: Conveyor) -> None:
    doc = demo_db.ruleset("project_work").to_document()
    doc["name"] = "Project work (imported)"
    before = len(demo_db.versions("project_work"))
    at = _owner_app("versions").run()
    at.get("file_uploader")[0].set_value(
        ("project.json", json.dumps(doc).encode(), "application/json")
    )
    at.run()
    assert any("project.json is valid" in s.value for s in at.success)
    at.text_input(key="versions:import_comment").input("renamed").run()
    _by_label(at.button, "Save imported version").click().run()
    assert not at.exception and not at.error, _errors(at)
    versions = demo_db.versions("project_work")
    assert len(versions) == before + 1
    assert demo_db.ruleset("project_work").name == "Project work (imported)"
    assert max(versions, key=lambda v: v.version).comment == "renamed"
    # The file is still in the uploader: the page says it was saved and offers no second save.
    assert any("was saved as version" in s.value for s in at.success)
    assert not [b for b in at.button if b.label == "Save imported version"]


def test_owner_pages_explain_an_empty_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Conveyor(url).close()
    monkeypatch.setenv("CONVEYOR_DB", url)
    for page in ("designer", "rule_editor", "versions"):
        at = _owner_app(page).run()
        assert not at.exception and not at.error, f"{page}: {at.exception} {_errors(at)}"
        if page != "versions":
            assert any("no funnels yet" in i.value for i in at.info)
    assert at.get("file_uploader"), "the import is offered when there is nothing to edit"

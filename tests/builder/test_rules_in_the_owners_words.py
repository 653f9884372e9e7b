"""The builder shows every rule in the owner's words (rule list, rule editor, canvas, dry run) and its
condition editor offers the common shapes directly, saving plain business-rules JSON."""

from __future__ import annotations

from builder.canvas.elements import canvas_elements
from builder.canvas.layout import ensure_positions
from builder.views.designer import rule_data_for
from engine.core.conveyor import Conveyor
from engine.document.summary import Vocabulary, summaries, summarise
from tests.builder.support import by_label, errors, session_app


def test_the_rule_list_gives_every_rule_its_summary(demo_db: Conveyor) -> None:
    rs = demo_db.ruleset("techflow")
    lines = summaries(rs, dict(demo_db.funnels()))
    at = session_app("rule_editor").run()
    assert not at.exception and not at.error, errors(at)
    picker = by_label(at.selectbox, "Rule")
    shown = list(picker.options)  # the labels as the owner reads them
    for rule in rs.rules:
        assert any(lines[rule.id] in label for label in shown), rule.id


def test_unanswered_qualification_is_one_row_and_its_parts_show_on_request(
    demo_db: Conveyor,
) -> None:
    at = session_app("rule_editor").run()
    by_label(at.selectbox, "Rule").select("qualification_timeout").run()
    assert not at.exception and not at.error, errors(at)
    text = " ".join(m.value for m in at.markdown)
    assert "is still unanswered → move to Cold call (90 days)" in text  # the heading
    rows = [m.value for m in at.markdown if "#FFFBEB" in m.value]
    assert (
        len(rows) == 1
        and "Budget confirmed, Talking to the decision maker or Real need is still unanswered"
        in rows[0]
    )
    operators = [w.value for w in at.selectbox if w.label == "Operator"]
    assert "does_not_contain" not in operators  # no nested contains / does-not-contain groups
    at.toggle(key="rules:techflow:rows").set_value(True).run()
    operators = [w.value for w in at.selectbox if w.label == "Operator"]
    assert operators.count("does_not_contain") == 6  # the business-rules rows it is made of


def test_any_of_is_no_is_added_directly_and_saved_as_business_rules_json(demo_db: Conveyor) -> None:
    at = session_app("rule_editor").run()
    by_label(at.selectbox, "Rule").select("proposal_attached").run()
    shape = by_label(at.selectbox, "Condition")
    shape.select("any_is").run()
    fields = by_label(at.multiselect, "Fields")
    assert fields.value == ["budget", "authority", "need"]
    assert by_label(at.selectbox, "Answer").value == "no"
    assert any(
        "Reads: any of Budget confirmed, Talking to the decision maker or Real need is “no”"
        in c.value
        for c in at.caption
    )
    by_label(at.button, "Add").click().run()
    assert not at.exception and not at.error, errors(at)
    at.text_input(key="owner_comment:rules").input("any no").run()
    at.button(key="owner_save:rules").click().run()
    assert not at.exception and not at.error, errors(at)
    rule = demo_db.ruleset("techflow").rule("proposal_attached")
    assert rule.conditions.model_dump()["all"][-1] == {
        "any": [
            {"name": "budget", "operator": "contains", "value": "no"},
            {"name": "authority", "operator": "contains", "value": "no"},
            {"name": "need", "operator": "contains", "value": "no"},
        ]
    }


def test_within_hours_of_an_event_is_added_with_the_event_itself(demo_db: Conveyor) -> None:
    at = session_app("rule_editor").run()
    by_label(at.selectbox, "Rule").select("proposal_attached").run()
    by_label(at.selectbox, "Condition").select("within").run()
    by_label(at.number_input, "Hours").set_value(12).run()
    by_label(at.selectbox, "Of").select("Client opened the proposal").run()
    by_label(at.button, "Add").click().run()
    assert not at.exception and not at.error, errors(at)
    assert any("within 12 h of Client opened the proposal" in m.value for m in at.markdown)
    at.button(key="owner_save:rules").click().run()
    assert not at.exception and not at.error, errors(at)
    saved = demo_db.ruleset("techflow").rule("proposal_attached").conditions.model_dump()
    assert saved["all"][-1] == {
        "all": [
            {"name": "proposal_opened", "operator": "is_true", "value": None},
            {"name": "hours_since_proposal_opened", "operator": "less_than", "value": 12},
        ]
    }


def test_canvas_rule_nodes_are_labelled_and_titled_with_their_summary(demo_db: Conveyor) -> None:
    at = session_app("designer").run()  # rule_data_for reads the funnels through the page's state
    assert not at.exception
    rs = demo_db.ruleset("techflow")
    doc = rs.to_document()
    ensure_positions(doc)
    els = canvas_elements(doc, rule_data_for(doc))
    lines = summaries(rs, dict(demo_db.funnels()))
    vocabulary = Vocabulary.of(rs, dict(demo_db.funnels()))
    for node in els["nodes"]:
        if node["cv"] == "rule":
            rule = rs.rule(node["id"].split(":", 1)[1])
            assert node["title"].startswith(lines[rule.id])
            # the label leaves out "In <stage>" (the node hangs at its stage), wrapped between words
            short = summarise(rule, vocabulary, with_stage=False)
            label = node["label"].replace("\n", " ").removesuffix(" …")
            assert label and short.startswith(label), (label, short)
            assert not label.startswith("In ")

"""Every rule reads as one line in the owner's words, made from its conditions and actions.

The common shapes (answered / unanswered, any of … is “no”, within N hours of …) are told as one
phrase; the shapes the editor builds are ordinary business-rules JSON that the validator accepts and
the summary tells back in the same words.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.document import shapes
from engine.document.conditions import parse
from engine.document.ruleset import RuleSet
from engine.document.summary import (
    Vocabulary,
    common_shape,
    describe_conditions,
    fill,
    summaries,
    summarise,
)
from engine.document.validate import validate_document
from engine.i18n import _, use_language

SAMPLES = Path(__file__).resolve().parents[2] / "sample_rules"
FUNNELS = {"techflow", "project_work"}


def _samples() -> list[RuleSet]:
    return [
        validate_document(json.loads(p.read_text(encoding="utf-8")), known_funnels=FUNNELS)
        for p in sorted(SAMPLES.glob("*.json"))
    ]


def _techflow() -> RuleSet:
    return next(rs for rs in _samples() if rs.funnel == "techflow")


def test_the_qualification_timeout_reads_as_the_owner_would_say_it() -> None:
    rs = _techflow()
    line = summarise(rs.rule("qualification_timeout"), Vocabulary.of(rs))
    assert line == (
        "In Qualification, 24 h after entering, if Budget confirmed, Talking to the decision maker "
        "or Real need is still unanswered → move to Cold call (90 days)"
    )


def test_any_answer_no_is_one_phrase_not_three_contains() -> None:
    rs = _techflow()
    line = summarise(rs.rule("qualification_no"), Vocabulary.of(rs))
    assert line == (
        "In Qualification, if any of Budget confirmed, Talking to the decision maker or Real need "
        "is “no” → move to Cold call (90 days)"
    )


def test_every_sample_rule_has_a_summary_in_words_not_in_json_names() -> None:
    names = {rs.funnel: rs.name for rs in _samples()}
    for rs in _samples():
        lines = summaries(rs, names)
        assert set(lines) == {r.id for r in rs.rules}
        for rid, line in lines.items():
            assert "→" in line and line[0].isupper(), (rid, line)
            # no operator or variable spelled as in the JSON
            for raw in ("does_not_contain", "equal_to", "hours_in_stage", "is_true", "_"):
                assert raw not in line.replace("{", "").split("“")[0], (rid, line)


def test_time_after_an_event_and_an_event_not_yet_happened() -> None:
    rs = _techflow()
    line = summarise(rs.rule("proposal_opened_no_reply"), Vocabulary.of(rs))
    assert line.startswith(
        "In Proposal, 24 h after Client opened the proposal, if “Client replied” has not happened yet"
    )
    assert "(high priority)" in line


def test_shapes_built_for_the_editor_validate_and_read_back_in_the_same_words() -> None:
    rs = _techflow()
    budget, company, tax = rs.field("budget"), rs.field("company_name"), rs.field("tax_id")
    assert budget and company and tax
    cases = {
        "Budget confirmed is answered": shapes.answered(budget),
        "Budget confirmed is still unanswered": shapes.unanswered(budget),
        "Counterparty: company name is answered": shapes.answered(company),
        "Counterparty: company name or Counterparty: tax id (ЄДРПОУ) is still unanswered": (
            shapes.any_unanswered([company, tax])
        ),
        "any of Budget confirmed or Real need is “yes”": shapes.any_is(
            [budget, rs.field("need")],  # type: ignore[list-item]
            "yes",
        ),
        "within 24 h of Client opened the proposal": shapes.within_hours(
            "hours_since_proposal_opened", 24, "proposal_opened"
        ),
        "within 12 h of entering": shapes.within_hours("hours_in_stage", 12),
        "3 days after entering": shapes.after_hours("hours_in_stage", 72),
    }
    vocabulary = Vocabulary.of(rs)
    doc = rs.to_document()
    for words, node in cases.items():
        assert describe_conditions(node, vocabulary) == words
        if not {"name"} <= set(node):  # a group: the editor shows it as one row
            assert common_shape(parse(node), vocabulary) == words
        rule = {
            "id": "shape_check",
            "name": "shape check",
            "conditions": {
                "all": [{"name": "stage", "operator": "equal_to", "value": "proposal"}, node]
            },
            "actions": [{"name": "move_to_stage", "params": {"to_stage": "contract"}}],
        }
        validate_document({**doc, "rules": [rule]}, known_funnels=FUNNELS)  # raises if invalid


def test_a_shape_that_does_not_fit_the_field_is_refused_with_its_name() -> None:
    rs = _techflow()
    with pytest.raises(ValueError, match="'maybe' is not an option of field 'budget'"):
        shapes.any_is([rs.field("budget")], "maybe")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="field 'paid_amount'"):
        shapes.unanswered(rs.field("paid_amount"))  # type: ignore[arg-type]


def test_a_draft_with_a_broken_tree_still_gets_a_line() -> None:
    rs = _techflow()
    draft = {"conditions": {"all": "oops"}, "actions": [{"name": "assign_manager"}]}
    assert summarise(draft, Vocabulary.of(rs.to_document())) == "? → assign a manager"


def test_a_translation_with_a_wrong_placeholder_shows_text_instead_of_failing() -> None:
    assert fill("In {stage}", stage="Paid") == "In Paid"
    assert fill("На етапі «{etap}»", stage="Paid") == "На етапі «{etap}»"


def test_summaries_are_in_the_interface_language() -> None:
    rs = _techflow()
    english = summaries(rs)
    with use_language("uk"):
        if _("In {stage}") == "In {stage}":
            pytest.xfail("the uk catalogue does not translate the summaries yet (make i18n)")
        ukrainian = summaries(rs)
    assert set(ukrainian) == set(english)
    for rid in english:
        assert ukrainian[rid] and ukrainian[rid] != english[rid], rid

"""Every kind of problem in a rule-set document is reported at once, shape first, at paths that malformed
items before it do not shift; odd documents give problems, never exceptions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.document.validate import validate_document
from engine.errors import RuleSetInvalid

TECHFLOW: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "sample_rules" / "techflow.json").read_text(
        encoding="utf-8"
    )
)


def problems_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(RuleSetInvalid) as info:
        validate_document(doc, known_funnels={"project_work"})
    return [str(p) for p in info.value.problems]


def test_shape_and_semantic_problems_are_reported_together_shape_first():
    doc = json.loads(json.dumps(TECHFLOW))
    del doc["stages"][0]["name"]
    doc["rules"][0]["conditions"] = {
        "all": [{"name": "amount", "operator": "bigger_than", "value": 1}]
    }
    doc["rules"][1]["actions"][0]["name"] = "send_fax"
    found = problems_of(doc)
    assert found[0] == "stages[0].name: required key 'name' is missing"
    assert any(
        p.startswith("rules[0].conditions.all[0].operator: 'bigger_than' is not an operator")
        for p in found
    )
    assert "rules[1].actions[0].name: 'send_fax' is not an action" in "\n".join(found)
    assert len(found) == 3, found


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(stages="nope"),
        lambda d: d.update(rules=[1, None, "x"]),
        lambda d: d.update(fields=[{"name": 3}]),
        lambda d: d["rules"][0].update(actions=[{"name": 5, "params": []}]),
        lambda d: d.update(transitions=[{"from": 1}]),
        lambda d: d.pop("funnel"),
    ],
)
def test_odd_documents_still_report_problems_not_exceptions(mutate):
    doc = json.loads(json.dumps(TECHFLOW))
    mutate(doc)
    assert problems_of(doc)  # RuleSetInvalid with at least one problem, nothing else escapes


def test_malformed_items_do_not_shift_the_paths_of_problems_after_them():
    doc = json.loads(json.dumps(TECHFLOW))
    doc["rules"][0] = "not a rule"
    doc["rules"][3]["actions"][0]["name"] = "send_fax"
    found = problems_of(doc)
    assert found[0].startswith("rules[0]: ")
    assert found[1:] == [
        "rules[3].actions[0].name: 'send_fax' is not an action; did you mean 'send_email'?"
    ]


def test_a_bad_stage_still_lets_rules_that_name_it_be_checked_without_false_alarms():
    doc = json.loads(json.dumps(TECHFLOW))
    doc["stages"][1]["kind"] = "weird"  # the stage is malformed, but its id exists
    found = problems_of(doc)
    assert found == [f"stages[1].kind: {found[0].split(': ', 1)[1]}"]
    assert not any("unknown stage" in p for p in found)

"""A label given per language keeps each language's text all the way to the variables rules read."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from business_rules import export_rule_data

from engine.document.ruleset import RuleSet
from engine.rules.actions import DealActions
from engine.rules.variables import variables_class

TECHFLOW = json.loads((Path(__file__).parents[2] / "sample_rules" / "techflow.json").read_text())


def _with_budget_label(uk: str) -> RuleSet:
    doc = copy.deepcopy(TECHFLOW)
    field = next(f for f in doc["fields"] if f["name"] == "budget")
    field["label"] = {"en": "Budget confirmed", "uk": uk}
    return RuleSet.model_validate(doc)


def test_funnels_agreeing_in_english_but_not_in_ukrainian_keep_their_own_labels() -> None:
    first = variables_class(_with_budget_label("Бюджет підтверджено"))
    second = variables_class(_with_budget_label("Бюджет погоджено"))

    assert first is not second
    labels = {
        cls: next(
            v["label"]
            for v in export_rule_data(cls, DealActions)["variables"]
            if v["name"] == "budget"
        )
        for cls in (first, second)
    }
    assert labels[first].in_language("uk") == "Бюджет підтверджено"
    assert labels[second].in_language("uk") == "Бюджет погоджено"

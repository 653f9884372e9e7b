"""The condition model, its visitor and the one variable registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from engine.document.conditions import AllOf, AnyOf, Condition, leaves, parse, variable_names
from engine.document.ruleset import ActionSpec, FieldDef, FieldType, RuleSet
from engine.document.validate import rule_data, validate_document
from engine.errors import RuleSetInvalid
from engine.rules.evaluators.vectorized import FRAME_COLUMNS
from engine.rules.registry import BUILTINS, Attribute, Present, Since, variables_for

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "sample_rules").glob("*.json"))
TREE = {
    "all": [
        {"name": "stage", "operator": "equal_to", "value": "proposal"},
        {
            "any": [
                {"name": "proposal_opened", "operator": "is_true", "value": None},
                {"name": "hours_in_stage", "operator": "greater_than", "value": 48},
            ]
        },
        {"name": "stage", "operator": "equal_to", "value": "proposal"},
    ]
}


def test_a_tree_is_read_by_which_key_is_present_and_dumps_back_to_the_same_json() -> None:
    node = parse(TREE)
    assert (
        isinstance(node, AllOf)
        and isinstance(node.all[1], AnyOf)
        and isinstance(node.all[0], Condition)
    )
    assert node.model_dump() == TREE
    # "value": null stays: business-rules reads the key even for operators without input.
    assert node.model_dump(mode="json", exclude_none=True) == TREE


@pytest.mark.parametrize(
    "raw",
    [
        {"all": [], "any": []},
        {"name": "stage", "operator": "equal_to", "value": "x", "extra": 1},
        {"name": "stage", "operator": "equal_to"},
        "stage",
        [{"name": "stage", "operator": "equal_to", "value": "x"}],
    ],
    ids=["two-group-keys", "unknown-leaf-key", "missing-value", "text", "list"],
)
def test_the_model_refuses_what_business_rules_would_misread(raw: Any) -> None:
    with pytest.raises(ValidationError):
        parse(raw)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_documents_export_unchanged(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    rs = RuleSet.model_validate(doc)
    assert [r["conditions"] for r in rs.business_rules()] == [
        r["conditions"] for r in doc["rules"] if r.get("enabled", True)
    ]
    assert RuleSet.model_validate(json.loads(rs.to_json())).to_json() == rs.to_json()


def test_the_visitor_gives_every_leaf_with_its_json_path_in_document_order() -> None:
    assert [(p, leaf.name) for p, leaf in leaves(parse(TREE), "rules[2].conditions")] == [
        ("rules[2].conditions.all[0]", "stage"),
        ("rules[2].conditions.all[1].any[0]", "proposal_opened"),
        ("rules[2].conditions.all[1].any[1]", "hours_in_stage"),
        ("rules[2].conditions.all[2]", "stage"),
    ]
    assert variable_names(parse(TREE)) == ["stage", "proposal_opened", "hours_in_stage"]


def test_a_rule_refers_to_a_stage_by_its_conditions_and_moves_not_by_any_text() -> None:
    doc = json.loads(SAMPLES[-1].read_text(encoding="utf-8"))
    rs = RuleSet.model_validate(doc)
    rule = rs.rules[0].model_copy(
        update={
            "conditions": parse(
                {
                    "all": [
                        {"name": "stage", "operator": "equal_to_case_insensitive", "value": "Won"}
                    ]
                }
            ),
            "actions": [ActionSpec(name="notify_manager", params={"text": "lost"})],
        }
    )
    assert rule.refers_to_stage("won") and not rule.refers_to_stage("lost")
    moving = rule.model_copy(
        update={"actions": [ActionSpec(name="move_to_stage", params={"to_stage": "lost"})]}
    )
    assert moving.refers_to_stage("lost")


def test_problems_in_one_tree_come_in_document_order_shape_and_names_alike() -> None:
    doc = json.loads(SAMPLES[-1].read_text(encoding="utf-8"))
    doc["rules"][0]["conditions"] = {
        "all": [
            {"name": "stag", "operator": "equal_to", "value": "x"},
            {"all": []},
            {"name": "amount", "operator": "greater_then", "value": 1, "note": "?"},
        ]
    }
    with pytest.raises(RuleSetInvalid) as info:
        validate_document(doc, known_funnels={"techflow"})
    assert [p.path for p in info.value.problems if p.path.startswith("rules[0].conditions")] == [
        "rules[0].conditions.all[0].name",
        "rules[0].conditions.all[1].all",
        "rules[0].conditions.all[2].note",
        "rules[0].conditions.all[2].operator",
    ]


def test_business_rules_declarations_are_the_registry() -> None:
    fields = [
        FieldDef(name="budget", label="Budget", type=FieldType.SELECT, options=["yes", "no"]),
        FieldDef(name="notes", type=FieldType.TEXT),
    ]
    rs = RuleSet(
        funnel="f",
        name="F",
        stages=[{"id": "a", "name": "A"}],
        fields=fields,
        events=[{"name": "demo_booked", "label": "Demo booked"}, {"name": "nda_returned"}],
    )
    declared = {v["name"]: v for v in rule_data(rs)["variables"]}
    assert {
        "demo_booked",
        "hours_since_demo_booked",
        "nda_returned",
        "hours_since_nda_returned",
    } <= set(declared)
    registry = variables_for(rs)
    assert set(declared) == set(registry)
    for name, var in registry.items():
        assert (
            declared[name]["field_type"],
            declared[name]["label"],
            declared[name]["options"],
        ) == (var.kind.value, var.label, list(var.options)), name


def test_every_deal_attribute_the_registry_reads_is_a_column_of_the_deals_frame() -> None:
    named = set()
    for var in BUILTINS:
        source = var.source
        named |= (
            set(source.anchors)
            if isinstance(source, Since)
            else {source.attribute}
            if isinstance(source, Present | Attribute)
            else set()
        )
    assert named <= set(FRAME_COLUMNS)

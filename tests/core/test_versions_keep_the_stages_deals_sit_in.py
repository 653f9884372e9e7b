"""A version cannot strand deals: saving or activating one without a stage that deals sit in is refused."""

from __future__ import annotations

import json

import pytest

from engine.errors import InvalidChange, RuleSetInvalid


def test_a_version_without_a_stage_that_deals_sit_in_is_refused(conveyor):
    doc = json.loads(conveyor.rulesets.export("techflow"))
    keys = [
        conveyor.deal(conveyor.create_deal("techflow", stage="proposal", title=f"P{n}")).key
        for n in range(7)
    ]
    slimmer = dict(
        doc,
        stages=[s for s in doc["stages"] if s["id"] != "proposal"],
        transitions=[t for t in doc["transitions"] if "proposal" not in (t["from"], t["to"])],
        rules=[r for r in doc["rules"] if "proposal" not in json.dumps(r["conditions"])],
    )
    before = len(conveyor.versions("techflow"))
    with pytest.raises(RuleSetInvalid) as info:
        conveyor.save_ruleset(slimmer)
    message = str(info.value)
    assert "stage 'proposal' is missing but 7 deal(s) are in it" in message
    assert ", ".join(keys[:5]) + " …" in message and keys[5] not in message
    assert "move those deals to another stage first" in message
    assert len(conveyor.versions("techflow")) == before
    conveyor.save_ruleset(slimmer, activate=False)  # stored, not active: nothing is stranded
    assert conveyor.ruleset("techflow").stage("proposal") is not None


def test_rolling_back_to_a_version_without_a_stage_that_deals_sit_in_is_refused(conveyor):
    doc = json.loads(conveyor.rulesets.export("techflow"))
    v1 = conveyor.versions("techflow")[0].version
    richer = dict(
        doc,
        stages=[*doc["stages"], {"id": "on_hold", "name": "On hold"}],
        transitions=[*doc["transitions"], {"from": "on_hold", "to": "incoming"}],
    )
    conveyor.save_ruleset(richer)
    held = conveyor.create_deal("techflow", key="hold-1", stage="on_hold")
    with pytest.raises(
        InvalidChange,
        match=r"cannot activate this version \d+ of funnel 'techflow': stage 'on_hold'"
        r" is missing but 1 deal\(s\) are in it \(hold-1\)",
    ):
        conveyor.activate("techflow", v1)
    assert conveyor.ruleset("techflow").stage("on_hold") is not None
    conveyor.move_deal(held, "incoming")
    assert conveyor.activate("techflow", v1).active

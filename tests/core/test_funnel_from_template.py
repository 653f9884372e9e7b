"""A funnel started from a template is saved as its first version, with the funnels its rules start;
a taken id is refused and nothing is saved."""

from __future__ import annotations

import pytest

from engine.core.conveyor import Conveyor
from engine.errors import ConveyorError


def test_techflow_template_saves_project_work_first_and_then_the_new_funnel(backend: str) -> None:
    c = Conveyor(backend)
    try:
        saved = c.rulesets.start_from_template("techflow", "acme", "Acme sales", author="test")
        assert [(v.funnel, v.version) for v in saved] == [("project_work", 1), ("acme", 1)]
        rs = c.ruleset("acme")
        assert rs.name == "Acme sales" and rs.rule("qualification_timeout") is not None
        deal = c.create_deal("acme", title="First lead")
        assert c.deal(deal).stage == "incoming"
        # a second funnel from the same template reuses the stored project_work
        again = c.rulesets.start_from_template("techflow", "acme_two")
        assert [v.funnel for v in again] == ["acme_two"]
    finally:
        c.close()


def test_a_taken_funnel_id_is_refused_and_nothing_is_saved(backend: str) -> None:
    c = Conveyor(backend)
    try:
        c.rulesets.start_from_template("empty", "pipeline")
        with pytest.raises(ConveyorError, match="funnel 'pipeline' exists already"):
            c.rulesets.start_from_template("ecommerce", "pipeline")
        assert len(c.versions("pipeline")) == 1
        assert c.ruleset("pipeline").rules == []
    finally:
        c.close()

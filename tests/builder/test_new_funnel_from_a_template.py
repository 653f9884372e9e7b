"""An owner starts a funnel from a template in the Designer: on an empty database the choice is the
first thing shown; the funnel's id comes from its name; the new funnel opens in the Designer."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.conveyor import Conveyor
from tests.builder.support import by_label, errors, session_app


def test_an_empty_database_starts_from_the_techflow_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Conveyor(url).close()
    monkeypatch.setenv("CONVEYOR_DB", url)
    at = session_app("designer").run()
    assert not at.exception and not at.error, errors(at)
    assert by_label(at.radio, "Template").value == "techflow"
    by_label(at.text_input, "Funnel name").input("Продажі Acme").run()
    assert by_label(at.text_input, "Funnel id").value == "prodazhi_acme"
    by_label(at.button, "Create funnel").click().run()
    assert not at.exception and not at.error, errors(at)
    c = Conveyor(url)
    try:
        assert dict(c.funnels()) == {
            "project_work": "Project work",
            "prodazhi_acme": "Продажі Acme",
        }
        assert c.versions("prodazhi_acme")[0].author == "owner (template)"
    finally:
        c.close()
    assert at.selectbox(key="owner_funnel").value == "prodazhi_acme"  # opened in the Designer
    assert [m.value for m in at.metric][:1] == ["6"]


def test_a_shop_funnel_from_the_template_beside_the_demo_funnels(demo_db: Conveyor) -> None:
    at = session_app("designer").run()
    by_label(at.radio, "Template").set_value("ecommerce").run()
    by_label(at.text_input, "Funnel name").input("Online shop").run()
    assert by_label(at.text_input, "Funnel id").value == "online_shop"
    by_label(at.button, "Create funnel").click().run()
    assert not at.exception and not at.error, errors(at)
    assert demo_db.ruleset("online_shop").name == "Online shop"
    assert demo_db.ruleset("techflow").name  # the demo funnels are untouched


def test_a_taken_id_is_refused_on_the_page_and_nothing_is_saved(demo_db: Conveyor) -> None:
    before = {f: len(demo_db.versions(f)) for f, _ in demo_db.funnels()}
    at = session_app("designer").run()
    by_label(at.radio, "Template").set_value("empty").run()
    by_label(at.text_input, "Funnel name").input("TechFlow").run()
    by_label(at.text_input, "Funnel id").input("techflow").run()
    by_label(at.button, "Create funnel").click().run()
    assert not at.exception
    assert "A funnel with id 'techflow' already exists" in errors(at)
    assert {f: len(demo_db.versions(f)) for f, _ in demo_db.funnels()} == before

"""The builder speaks the session's language: the sidebar switch turns every page Ukrainian, and the
default comes from CONVEYOR_LANG."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.core.conveyor import Conveyor
from tests.builder.support import errors, session_app

ROOT = Path(__file__).resolve().parents[2]

UKRAINIAN_TITLES = {
    "designer": "Конструктор воронки",
    "rule_editor": "Редактор правил",
}


def test_the_sidebar_switch_turns_the_builder_ukrainian(demo_db: Conveyor) -> None:
    at = AppTest.from_file(str(ROOT / "builder" / "app.py"), default_timeout=30).run()
    assert not at.exception and not at.error, errors(at)
    switch = at.sidebar.selectbox(key="ui_language_w")
    assert switch.value == "en"
    switch.select("uk").run()
    assert not at.exception and not at.error, errors(at)
    assert at.session_state["ui_language"] == "uk"
    assert at.title[0].value == "🗺️ " + UKRAINIAN_TITLES["designer"]
    assert at.sidebar.selectbox(key="ui_language_w").label == "🌐 Мова"


@pytest.mark.parametrize("page", list(UKRAINIAN_TITLES))
def test_every_page_is_ukrainian_once_the_session_chose_it(demo_db: Conveyor, page: str) -> None:
    at = session_app(page)
    at.session_state["ui_language"] = "uk"
    at.run()
    assert not at.exception and not at.error, errors(at)
    assert UKRAINIAN_TITLES[page] in at.title[0].value


def test_conveyor_lang_gives_the_default_language(
    demo_db: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_LANG", "uk")
    at = session_app("rule_editor").run()
    assert not at.exception, at.exception
    assert UKRAINIAN_TITLES["rule_editor"] in at.title[0].value

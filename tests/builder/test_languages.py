"""The builder speaks the session's language: the sidebar switch turns every page Ukrainian, and the
default comes from CONVEYOR_LANG."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.core.conveyor import Conveyor
from engine.i18n import use_language
from tests.builder.support import by_label, errors, go, session_app, sign_in

ROOT = Path(__file__).resolve().parents[2]

UKRAINIAN_TITLES = {
    "designer": "Конструктор воронки",
    "rule_editor": "Редактор правил",
    "versions": "Версії, імпорт і експорт",
    "dry_run": "Пробний запуск",
    "deals": "Угоди",
    "actions_review": "Перевірка дій",
    "analytics": "Аналітика",
    "doors": "Вебхуки та форми",
    "my_day": "Мій день",
}


def test_the_sidebar_switch_turns_the_builder_ukrainian(demo_db: Conveyor) -> None:
    at = sign_in(AppTest.from_file(str(ROOT / "builder" / "app.py"), default_timeout=30)).run()
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
    at = sign_in(session_app(page), "manager" if page == "my_day" else "owner")
    at.session_state["ui_language"] = "uk"
    at.run()
    assert not at.exception and not at.error, errors(at)
    assert UKRAINIAN_TITLES[page] in at.title[0].value


def test_conveyor_lang_gives_the_default_language(
    demo_db: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_LANG", "uk")
    at = session_app("deals").run()
    assert not at.exception, at.exception
    assert UKRAINIAN_TITLES["deals"] in at.title[0].value


def test_in_ukrainian_names_typed_in_cyrillic_give_transliterated_ids(demo_db: Conveyor) -> None:
    # AppTest formats a widget's options in the test's own thread: it reads them in Ukrainian too.
    with use_language("uk"):
        _add_a_cyrillic_stage_and_a_rule_for_it(demo_db)


def _add_a_cyrillic_stage_and_a_rule_for_it(demo_db: Conveyor) -> None:
    at = session_app("designer")
    at.session_state["ui_language"] = "uk"
    at.run()
    by_label(at.text_input, "Назва").input("Демо-дзвінок").run()
    assert by_label(at.text_input, "Ідентифікатор").value == "demo_dzvinok"
    by_label(at.button, "Додати етап").click().run()
    assert not at.exception and not at.error, errors(at)
    assert by_label(at.selectbox, "Редагувати").value == "stage:demo_dzvinok"

    # A new rule for it is named in Ukrainian, and its id is that name romanised, never "rule".
    go(at, "rule_editor")
    by_label(at.selectbox, "Правило").select("__new__").run()
    by_label(at.selectbox, "Етап, за яким стежить").select("demo_dzvinok").run()
    by_label(at.button, "Створити правило").click().run()
    assert not at.exception and not at.error, errors(at)
    at.button(key="owner_save:rules").click().run()
    rs = demo_db.ruleset("techflow")
    assert rs.stage("demo_dzvinok").name == "Демо-дзвінок"
    rule = next(r for r in rs.rules if r.refers_to_stage("demo_dzvinok"))
    assert (rule.id, rule.name) == ("demo_dzvinok_nahaduvannia", "Демо-дзвінок: нагадування")


def test_the_language_a_signed_in_user_picks_is_theirs_at_the_next_sign_in(
    demo_db: Conveyor,
) -> None:
    at = sign_in(AppTest.from_file(str(ROOT / "builder" / "app.py"), default_timeout=30)).run()
    at.sidebar.selectbox(key="ui_language_w").select("uk").run()
    assert not at.exception and not at.error, errors(at)
    assert demo_db.users.get("owner").language == "uk"

    # A new tab signs in through the form (CONVEYOR_LANG is en) and is Ukrainian from the first page.
    fresh = AppTest.from_file(str(ROOT / "builder" / "app.py"), default_timeout=30).run()
    assert fresh.title[0].value == "Sign in to Conveyor"
    by_label(fresh.text_input, "User name").input("owner")
    by_label(fresh.text_input, "Password").input("demo-owner")
    by_label(fresh.button, "Sign in").click().run()
    assert not fresh.exception and not fresh.error, errors(fresh)
    assert fresh.title[0].value == "🗺️ " + UKRAINIAN_TITLES["designer"]

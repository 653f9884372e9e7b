"""A task's title in the reader's language: a rule that writes the title per language
(``{"uk": …, "en": …}``) is read in each reader's interface language on the deal card, the task queue
and a manager's day; a title written once stays the owner's words in every language."""

from __future__ import annotations

from engine.i18n import use_language


def _deal(conveyor) -> int:
    deal = conveyor.create_deal(
        "techflow", title="Acme", fields={"phone": "+380501112233"}, manager="Olena"
    )
    conveyor.dispatcher.run_until_idle()
    return deal


def test_a_title_written_per_language_reads_in_the_interface_language(conveyor):
    deal = _deal(conveyor)
    assert conveyor.ruleset("techflow").language == "uk"  # the funnel's clients read Ukrainian
    olena = next(m.id for m in conveyor.deals.managers() if m.name == "Olena")
    read = {}
    for lang in ("en", "uk"):
        with use_language(lang):
            read[lang] = (
                {t.title for t in conveyor.queries.tasks(deal)},
                set(conveyor.reports.task_queue()["title"]),
                {t.title for t in conveyor.day.of(olena).today + conveyor.day.of(olena).overdue},
                set(conveyor.reports.deal_card(deal).tasks["title"]),
            )
    for seen in read["en"]:
        assert "Call the new lead Acme" in seen
    for seen in read["uk"]:
        assert "Зателефонувати новому ліду Acme" in seen


def test_a_title_written_once_is_the_same_in_every_language(conveyor):
    deal = _deal(conveyor)
    from sqlalchemy import text

    with conveyor.engine.begin() as db:
        db.execute(text("UPDATE tasks SET titles = NULL, title = 'Ring Acme'"))
    for lang in ("en", "uk"):
        with use_language(lang):
            assert {t.title for t in conveyor.queries.tasks(deal)} == {"Ring Acme"}

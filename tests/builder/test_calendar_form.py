"""The designer's working-time form: a malformed calendar is shown with its JSON paths and not applied;
a good one lands in the draft, is saved as a version, and its variables are offered in the rule editor."""

from __future__ import annotations

from builder.views.calendar_form import parse_intervals
from engine.core.conveyor import Conveyor
from tests.builder.support import by_label, errors, go, session_app


def test_intervals_are_read_as_written_and_left_to_the_validator() -> None:
    assert parse_intervals("09:00–13:00, 14:00-18:00") == [["09:00", "13:00"], ["14:00", "18:00"]]
    assert parse_intervals("  ") == []
    assert parse_intervals("9") == [["9"]]


def test_the_owner_sets_working_hours_sees_mistakes_by_path_and_saves_the_calendar(
    demo_db: Conveyor,
) -> None:
    before = len(demo_db.versions("techflow"))
    at = session_app("designer").run()
    assert not at.exception and not at.error, errors(at)
    # A typo and an interval that ends before it starts: nothing reaches the draft.
    by_label(at.text_input, "Monday").input("9:00-18:00")
    by_label(at.text_input, "Tuesday").input("18:00-09:00")
    by_label(at.button, "Apply the calendar").click().run()
    shown = errors(at)
    assert "calendar.week.mon[0][0]" in shown and "'9:00' is not a time of day" in shown
    assert "calendar.week.tue[0]" in shown and "ends before it starts" in shown
    assert not at.exception

    by_label(at.text_input, "Monday").input("09:00-13:00, 14:00-18:00")
    by_label(at.text_input, "Tuesday").input("09:00-18:00")
    by_label(at.text_area, "Other days off (one date per line, YYYY-MM-DD)").input("2026-12-31")
    by_label(at.button, "Apply the calendar").click().run()
    assert not at.exception and not at.error, errors(at)

    at.text_input(key="owner_comment:designer").input("office hours").run()
    at.button(key="owner_save:designer").click().run()
    assert not at.exception and not at.error, errors(at)
    assert len(demo_db.versions("techflow")) == before + 1
    calendar = demo_db.ruleset("techflow").calendar
    assert calendar is not None and calendar.zone == "Europe/Kyiv"
    assert calendar.week["mon"] == [["09:00", "13:00"], ["14:00", "18:00"]]
    assert calendar.week["tue"] == [["09:00", "18:00"]]
    assert calendar.holidays is not None
    assert (calendar.holidays.country, calendar.holidays.dates) == ("UA", ["2026-12-31"])

    # The rule editor now offers the working-time twins next to the calendar-hour variables.
    at = go(at, "rule_editor")
    assert not at.exception and not at.error, errors(at)
    offered = [o for w in at.selectbox if w.label == "Variable" for o in w.options]
    assert "Working hours in stage" in offered
    assert offered.index("Working hours in stage") == offered.index("Hours in stage") + 1

    # Removing it takes it out of the draft (the expander says so); the saved version keeps it.
    at = go(at, "designer")
    by_label(at.button, "Remove the calendar").click().run()
    assert not at.exception and not at.error, errors(at)
    assert any("not declared" in e.label for e in at.expander)
    assert demo_db.ruleset("techflow").calendar is not None

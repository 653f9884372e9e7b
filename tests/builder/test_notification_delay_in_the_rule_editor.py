"""The rule editor offers a notification's delay as it offers a task's due time (the action's declared
params): the owner adds one, sees it in the rule's summary, and saves it; a working-hours delay on a
funnel without a calendar is refused with its path."""

from __future__ import annotations

from engine.core.conveyor import Conveyor
from tests.builder.support import by_label, errors, session_app


def _add_a_notification(at):
    by_label(at.selectbox, "Rule").select("assign_new_lead").run()
    by_label(at.button, "+ Action").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_owner_delays_a_notification_by_two_hours_and_saves_it(demo_db: Conveyor) -> None:
    at = _add_a_notification(session_app("rule_editor").run())
    by_label(at.text_input, "Delay (hours) (optional)").input("2").run()
    assert not at.exception and not at.error, errors(at)
    at.text_input(key="owner_comment:rules").input("tell the manager two hours later").run()
    at.button(key="owner_save:rules").click().run()
    assert not at.exception and not at.error, errors(at)
    [notify] = [
        a
        for a in demo_db.ruleset("techflow").rule("assign_new_lead").actions
        if a.name == "notify_manager"
    ]
    assert notify.params["delay_hours"] == 2 and "due_in_working_hours" not in notify.params


def test_a_working_hours_delay_needs_the_funnels_calendar(demo_db: Conveyor) -> None:
    at = _add_a_notification(session_app("rule_editor").run())
    by_label(at.text_input, "Delay (working hours) (optional)").input("8").run()
    shown = errors(at)
    assert "counts working time" in shown and "calendar" in shown

"""``notify_manager`` with ``due_in_working_hours`` (or ``delay_hours``): the message to the manager is
queued not before that time and the dispatcher keeps it until then. A lead on Friday 16:00 Kyiv time
with 8 working hours (09:00–18:00 on weekdays) reaches the manager's Telegram on Monday at 15:00, not
on Friday, Saturday or Monday morning; a notification whose deal left the stage before its time is
not sent; the validator refuses a bad delay with its JSON path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from engine.document.validate import validate_document
from engine.errors import RuleSetInvalid
from engine.outbox.dispatcher import run_until_idle
from storage import repositories as repo
from tests.support.channels import BOT_TOKEN as TOKEN
from tests.support.channels import telegram_router
from tests.support.gateways import BotApi
from tests.support.sessions import db_session

KYIV = ZoneInfo("Europe/Kyiv")
OFFICE = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def kyiv(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=KYIV)


def funnel(params: dict, *, calendar: bool = True) -> dict:
    doc = {
        "funnel": "calls",
        "name": "Calls",
        "stages": [{"id": "incoming", "name": "Incoming"}, {"id": "done", "name": "Done"}],
        "rules": [
            {
                "id": "call_back",
                "repeat": "once_per_deal",
                "conditions": {
                    "all": [{"name": "stage", "operator": "equal_to", "value": "incoming"}]
                },
                "actions": [
                    {"name": "notify_manager", "params": {"text": "Call {title} back", **params}}
                ],
            }
        ],
    }
    if calendar:
        doc["calendar"] = {"zone": "Europe/Kyiv", "week": OFFICE, "holidays": {"country": "UA"}}
    return doc


def _world(backend: str, tmp_path, bot: BotApi, params: dict) -> tuple[Conveyor, VirtualClock]:
    clock = VirtualClock(kyiv(2026, 12, 4, 16).astimezone(UTC))  # Friday 16:00 in Kyiv
    c = Conveyor(backend, clock=clock)
    c.provider = telegram_router(tmp_path, bot.base_url)
    c.add_manager("Olena")
    c.manager_channels.set("Olena", "telegram:700")
    c.save_ruleset(funnel(params))
    return c, clock


def test_eight_working_hours_from_friday_afternoon_reach_the_manager_on_monday_at_15(
    backend, tmp_path
):
    with BotApi(TOKEN) as bot:
        c, clock = _world(backend, tmp_path, bot, {"due_in_working_hours": 8})
        deal = c.create_deal("calls", title="Acme", manager="Olena")
        run_until_idle(c)  # the engine applies the notification at once: counted from Friday 16:00
        for moment in (kyiv(2026, 12, 4, 17, 59), kyiv(2026, 12, 5, 12), kyiv(2026, 12, 7, 14, 59)):
            clock.set(moment.astimezone(UTC))
            run_until_idle(c)
            assert bot.calls == [], moment  # not before its time
        clock.set(kyiv(2026, 12, 7, 15).astimezone(UTC))
        run_until_idle(c)
        run_until_idle(c)
        [call] = bot.calls
    assert call["chat_id"] == "700" and "Call Acme back" in call["text"]
    with db_session(c) as s:
        [task] = repo.list_tasks(s, deal_id=deal)
        assert task.kind == "notification" and task.due_at == kyiv(2026, 12, 7, 15)
    # Not on My day before its time; there once it is.
    olena = next(m.id for m in c.deals.managers() if m.name == "Olena")
    assert c.day.of(olena, now=kyiv(2026, 12, 5, 10).astimezone(UTC)).today == []
    assert [t.title for t in c.day.of(olena, now=clock.now()).today] == ["Call Acme back"]
    c.close()


def test_a_delay_in_calendar_hours_waits_that_long(backend, tmp_path):
    with BotApi(TOKEN) as bot:
        c, clock = _world(backend, tmp_path, bot, {"delay_hours": 2})
        c.create_deal("calls", title="Globex", manager="Olena")
        run_until_idle(c)
        clock.advance(timedelta(hours=1, minutes=59))
        run_until_idle(c)
        assert bot.calls == []
        clock.advance(timedelta(minutes=1))
        run_until_idle(c)
        assert len(bot.calls) == 1
    c.close()


def test_a_notification_whose_deal_left_the_stage_before_its_time_is_not_sent(backend, tmp_path):
    with BotApi(TOKEN) as bot:
        c, clock = _world(backend, tmp_path, bot, {"due_in_working_hours": 8})
        deal = c.create_deal("calls", title="Initech", manager="Olena")
        run_until_idle(c)
        clock.set(kyiv(2026, 12, 5, 11).astimezone(UTC))
        c.move_deal(deal, "done")  # the client called back on Saturday: the notification closes
        clock.set(kyiv(2026, 12, 7, 16).astimezone(UTC))
        run_until_idle(c)
        assert bot.calls == []
    log = c.reports.action_log()
    [row] = log[log["action"] == "manager_message"].to_dict("records")
    assert row["status"] == "done" and row["message"] == ""
    assert "not sent" in row["summary"] and "closed" in row["summary"]
    c.close()


@pytest.mark.parametrize(
    ("params", "calendar", "path", "words"),
    [
        pytest.param(
            {"delay_hours": 1, "due_in_working_hours": 2},
            True,
            "rules[0].actions[0].params.due_in_working_hours",
            "not both",
            id="both",
        ),
        pytest.param(
            {"due_in_working_hours": 8},
            False,
            "rules[0].actions[0].params.due_in_working_hours",
            "calendar",
            id="no-calendar",
        ),
        pytest.param(
            {"delay_hours": -1},
            True,
            "rules[0].actions[0].params.delay_hours",
            "negative",
            id="neg",
        ),
        pytest.param(
            {"delay_hours": "soon"},
            True,
            "rules[0].actions[0].params.delay_hours",
            "number",
            id="text",
        ),
        pytest.param(
            {"due_in_working_hours": 10**7},
            True,
            "rules[0].actions[0].params.due_in_working_hours",
            "at most",
            id="too-far",
        ),
    ],
)
def test_a_bad_notification_delay_is_refused_with_its_path(params, calendar, path, words):
    with pytest.raises(RuleSetInvalid) as refused:
        validate_document(funnel(params, calendar=calendar))
    problems = refused.value.problems
    assert any(p.path == path and words in p.message for p in problems), problems


def test_a_notification_waiting_for_monday_is_not_an_old_pending_action_in_the_status(
    backend, tmp_path
):
    from engine.service.status import health

    with BotApi(TOKEN) as bot:
        c, clock = _world(backend, tmp_path, bot, {"due_in_working_hours": 8})
        c.create_deal("calls", title="Hooli", manager="Olena")
        run_until_idle(c)
        clock.set(kyiv(2026, 12, 6, 20).astimezone(UTC))  # Sunday evening: it waits on purpose
        assert health(c).oldest_pending_at is None
        clock.set(kyiv(2026, 12, 7, 15, 30).astimezone(UTC))  # due, and not sent yet: it counts
        assert health(c).oldest_pending_at is not None
    c.close()

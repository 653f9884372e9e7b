"""A manager deactivated (left the team) while messages to them wait: none reaches their chat (an
ex-colleague must not get clients' news), none is silently recorded where nobody looks; each ends
``dead`` in the Actions review saying why, and one whose deal went to an active manager meanwhile
reaches that manager instead."""

from __future__ import annotations

from datetime import timedelta

from engine.outbox.dispatcher import run_until_idle
from tests.support.channels import BOT_TOKEN as TOKEN
from tests.support.channels import messaging_funnel, telegram_router
from tests.support.gateways import BotApi

LATER = {"name": "notify_manager", "params": {"text": "Call {title} back", "delay_hours": 4}}
NOW = {"name": "notify_manager", "params": {"text": "Call {title} back"}}


def _setup(conveyor, tmp_path, bot: BotApi, action: dict) -> None:
    conveyor.provider = telegram_router(tmp_path, bot.base_url)
    conveyor.save_ruleset(messaging_funnel([action]))
    conveyor.manager_channels.set("Olena", "telegram:700")
    conveyor.manager_channels.set("Petro", "telegram:800")


def _id(conveyor, name: str) -> int:
    return next(m.id for m in conveyor.deals.managers() if m.name == name)


def _manager_log(conveyor):
    log = conveyor.reports.action_log()
    return log[log["action"] == "manager_message"].to_dict("records")


def test_a_waiting_message_to_a_deactivated_manager_is_dead_and_says_why(conveyor, clock, tmp_path):
    with BotApi(TOKEN) as bot:
        _setup(conveyor, tmp_path, bot, LATER)
        conveyor.create_deal("outreach", title="Acme", key="ACME-1", manager="Olena")
        run_until_idle(conveyor)
        conveyor.deals.set_manager_active(_id(conveyor, "Olena"), False)  # she left on the same day
        clock.advance(timedelta(hours=4))
        run_until_idle(conveyor)
        assert bot.calls == []
    [row] = _manager_log(conveyor)
    assert row["status"] == "dead" and row["recipient"] == "Olena"
    assert "Olena is deactivated" in row["error"] and "ACME-1" in row["error"]


def test_a_deactivated_manager_without_a_channel_is_not_recorded_where_nobody_looks(
    conveyor, tmp_path
):
    with BotApi(TOKEN) as bot:
        _setup(conveyor, tmp_path, bot, NOW)
        conveyor.manager_channels.set("Olena", "none")
        conveyor.deals.set_manager_active(_id(conveyor, "Olena"), False)
        conveyor.create_deal("outreach", title="Globex", manager="Olena")
        run_until_idle(conveyor)
    [row] = _manager_log(conveyor)
    assert row["status"] == "dead" and "deactivated" in row["error"]


def test_a_message_whose_deal_went_to_an_active_manager_reaches_that_manager(
    conveyor, clock, tmp_path
):
    with BotApi(TOKEN) as bot:
        _setup(conveyor, tmp_path, bot, LATER)
        deal = conveyor.create_deal("outreach", title="Initech", manager="Olena")
        run_until_idle(conveyor)
        conveyor.deals.set_manager_active(_id(conveyor, "Olena"), False)
        conveyor.deals.reassign(deal, "Petro", actor="owner")
        clock.advance(timedelta(hours=4))
        run_until_idle(conveyor)
        [call] = bot.calls
    assert call["chat_id"] == "800"
    [row] = _manager_log(conveyor)
    assert row["message"] == "delivered" and row["recipient"] == "Petro"


def test_a_dead_message_retried_after_the_deal_was_given_away_reaches_the_new_manager(
    conveyor, clock, tmp_path
):
    """The dead message's advice, followed: give the deal to an active manager, then retry."""
    with BotApi(TOKEN) as bot:
        _setup(conveyor, tmp_path, bot, LATER)
        deal = conveyor.create_deal("outreach", title="Umbrella", key="UMB-1", manager="Olena")
        run_until_idle(conveyor)
        conveyor.deals.set_manager_active(_id(conveyor, "Olena"), False)
        clock.advance(timedelta(hours=4))
        run_until_idle(conveyor)
        [dead] = _manager_log(conveyor)
        assert dead["status"] == "dead" and "PATCH /api/v1/deals/UMB-1" in dead["error"]

        conveyor.deals.reassign(deal, "Petro", actor="owner")
        conveyor.retry_action(int(dead["id"]))
        run_until_idle(conveyor)
        [call] = bot.calls
    assert call["chat_id"] == "800"


def test_a_waiting_message_goes_with_the_deal_to_its_new_manager(conveyor, clock, tmp_path):
    with BotApi(TOKEN) as bot:
        _setup(conveyor, tmp_path, bot, LATER)
        deal = conveyor.create_deal("outreach", title="Hooli", manager="Olena")
        run_until_idle(conveyor)
        conveyor.deals.reassign(deal, "Petro", actor="owner")  # Olena is active, off sick
        clock.advance(timedelta(hours=4))
        run_until_idle(conveyor)
        [call] = bot.calls
    assert call["chat_id"] == "800"

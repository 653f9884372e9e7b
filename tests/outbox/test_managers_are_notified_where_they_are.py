"""A manager is told where they are: ``notify_manager`` reaches their Telegram chat through a local
server speaking the Bot API, a high-priority task reaches their mailbox on aiosmtpd, each exactly
once and still shown in the builder; a manager with no channel has it ``recorded``; a preference that
is not one is refused naming the field, nothing saved."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.core.access import Actor, ActorKind, Role
from engine.errors import Forbidden, InvalidChange
from engine.outbox.dispatcher import dispatch_internal, dispatch_messages, run_until_idle
from storage import repositories as repo
from storage.models import OutboxAction
from tests.support.channels import messaging_funnel, router_from_toml
from tests.support.gateways import BotApi, smtp_server
from tests.support.sessions import db_session

TOKEN = "123456:AAE-test-token_0123456789abcdef"
NOTIFY = {"name": "notify_manager", "params": {"text": "Call {title} back today"}}
URGENT = {
    "name": "create_task",
    "params": {"title": "Send {title} the proposal", "due_in_hours": 2, "priority": "high"},
}
ROUTINE = {"name": "create_task", "params": {"title": "Check in with {title}", "due_in_hours": 24}}


def _telegram(base_url: str) -> str:
    return (
        f'[channels.telegram]\nprovider = "telegram"\ntoken = "${{TELEGRAM_BOT_TOKEN}}"\n'
        f'base_url = "{base_url}"\n'
    )


def _email(port: int) -> str:
    return (
        f'[channels.email]\nprovider = "smtp"\nurl = "smtp://127.0.0.1:{port}"\n'
        'from = "conveyor@techflow.example"\n'
    )


def _manager_messages(conveyor, deal: int):
    with db_session(conveyor) as s:
        rows = list(
            s.scalars(
                select(OutboxAction)
                .where(OutboxAction.manager_id.is_not(None), OutboxAction.deal_id == deal)
                .order_by(OutboxAction.id)
            )
        )
        ids = {r.id for r in rows}
        messages = [m for m in repo.list_messages(s) if m.outbox_id in ids]
        # Not among the deal's messages to its client (the deal card's Messages tab):
        assert not [m for m in repo.list_messages(s, deal) if m.outbox_id in ids]
        return rows, messages


def test_notify_manager_reaches_the_managers_telegram_chat_once_and_stays_in_the_builder(
    conveyor, tmp_path
):
    with BotApi(TOKEN) as bot:
        conveyor.provider = router_from_toml(
            tmp_path, _telegram(bot.base_url), {"TELEGRAM_BOT_TOKEN": TOKEN}
        )
        conveyor.save_ruleset(messaging_funnel([NOTIFY]))
        conveyor.manager_channels.set("Olena", "telegram:555000111")
        deal = conveyor.create_deal("outreach", title="Acme", manager="Olena")
        run_until_idle(conveyor)
        run_until_idle(conveyor)  # nothing left: the acknowledged message is not sent again
    [call] = bot.calls
    assert call["chat_id"] == "555000111"
    assert "Call Acme back today" in call["text"] and "Acme" in call["text"]
    rows, [message] = _manager_messages(conveyor, deal)
    [row] = rows
    assert row.status == "done" and row.idempotency_key.endswith(":manager")
    assert message.status == "delivered" and message.channel == "telegram"
    assert message.to == "555000111"
    with db_session(conveyor) as s:
        [task] = repo.list_tasks(s, deal_id=deal)
    assert task.kind == "notification" and task.title == "Call Acme back today"


def test_a_high_priority_task_reaches_the_managers_mailbox_and_a_routine_one_does_not(
    conveyor, tmp_path
):
    with smtp_server() as (port, box):
        conveyor.provider = router_from_toml(tmp_path, _email(port))
        conveyor.save_ruleset(messaging_funnel([URGENT, ROUTINE]))
        conveyor.manager_channels.set("Olena", "email:olena@techflow.example")
        deal = conveyor.create_deal("outreach", title="Globex", manager="Olena")
        run_until_idle(conveyor)
    [mail] = box.messages
    assert mail["to"] == ["olena@techflow.example"]
    assert "Send Globex the proposal" in mail["message"]["Subject"]
    assert "Send Globex the proposal" in mail["message"].get_content()
    rows, [message] = _manager_messages(conveyor, deal)
    assert len(rows) == 1 and message.status == "sent" and message.channel == "email"
    with db_session(conveyor) as s:
        titles = sorted(t.title for t in repo.list_tasks(s, deal_id=deal))
    assert titles == ["Check in with Globex", "Send Globex the proposal"]


def test_a_manager_with_no_channel_has_the_notification_recorded_not_lost(conveyor, tmp_path):
    with BotApi(TOKEN) as bot:
        conveyor.provider = router_from_toml(
            tmp_path, _telegram(bot.base_url), {"TELEGRAM_BOT_TOKEN": TOKEN}
        )
        conveyor.save_ruleset(messaging_funnel([NOTIFY]))
        deal = conveyor.create_deal("outreach", title="Initech", manager="Olena")
        run_until_idle(conveyor)
    assert bot.calls == []
    rows, [message] = _manager_messages(conveyor, deal)
    assert [r.status for r in rows] == ["done"]
    assert message.status == "recorded" and message.channel == "builder"
    assert message.to == "Olena" and "Call Initech back today" in message.text


def test_the_notification_is_queued_with_its_task_in_one_transaction(conveyor, tmp_path):
    # Applying the internal action queues the message; until the senders run it is pending.
    conveyor.provider = router_from_toml(
        tmp_path, _telegram("http://127.0.0.1:9"), {"TELEGRAM_BOT_TOKEN": TOKEN}
    )
    conveyor.save_ruleset(messaging_funnel([NOTIFY]))
    conveyor.manager_channels.set("Olena", "telegram:42")
    deal = conveyor.create_deal("outreach", title="Umbrella", manager="Olena")
    [done] = dispatch_internal(conveyor)
    assert done.status == "done" and done.params["told"] is True
    rows, messages = _manager_messages(conveyor, deal)
    assert [r.status for r in rows] == ["pending"] and messages == []


@pytest.mark.parametrize(
    ("preference", "error"),
    [
        ("email:olena-at-techflow", "notify: 'olena-at-techflow' is not an e-mail address"),
        ("telegram:olena", "notify: 'olena' is not a Telegram chat id"),
        ("sms:+380501110001", "notify: the channel 'sms' is not configured in the config file"),
        ("fax:123", "notify: 'fax' is not a channel for managers"),
        ("telegram", "notify: write channel:address"),
    ],
    ids=["bad-email", "bad-chat-id", "channel-not-configured", "unknown-channel", "no-address"],
)
def test_a_preference_that_is_not_one_is_refused_naming_the_field(
    conveyor, tmp_path, preference, error
):
    conveyor.provider = router_from_toml(
        tmp_path,
        _telegram("http://127.0.0.1:9") + _email(25),
        {"TELEGRAM_BOT_TOKEN": TOKEN},
    )
    conveyor.manager_channels.set("Olena", "telegram:777")
    with pytest.raises(InvalidChange, match=error.replace("+", r"\+")):
        conveyor.manager_channels.set("Olena", preference)
    assert str(conveyor.manager_channels.get("Olena")) == "telegram:777"  # nothing saved


def test_a_manager_sets_only_their_own_channel(conveyor, tmp_path):
    conveyor.provider = router_from_toml(tmp_path, _email(25))
    olena = Actor(ActorKind.USER, "Olena", Role.MANAGER)
    assert str(conveyor.manager_channels.set("Olena", "email:o@techflow.example", actor=olena)) == (
        "email:o@techflow.example"
    )
    others = [m.name for m in conveyor.deals.managers() if m.name != "Olena"]
    with pytest.raises(Forbidden, match="only their own"):
        conveyor.manager_channels.set(others[0], "email:x@techflow.example", actor=olena)
    assert conveyor.manager_channels.get(others[0]).channel is None
    conveyor.manager_channels.set("Olena", "none", actor=olena)
    assert conveyor.manager_channels.get("Olena").channel is None


def test_a_message_retried_after_a_fix_goes_to_the_managers_new_chat(conveyor, tmp_path):
    with BotApi(TOKEN, lambda c: "reject" if c["chat_id"] == "111" else "ok") as bot:
        conveyor.provider = router_from_toml(
            tmp_path, _telegram(bot.base_url), {"TELEGRAM_BOT_TOKEN": TOKEN}
        )
        conveyor.save_ruleset(messaging_funnel([NOTIFY]))
        conveyor.manager_channels.set("Olena", "telegram:111")
        deal = conveyor.create_deal("outreach", title="Hooli", manager="Olena")
        dispatch_internal(conveyor)
        [failed] = dispatch_messages(conveyor)
        assert failed.status == "dead" and "chat not found" in failed.error
        conveyor.manager_channels.set("Olena", "telegram:222")
        conveyor.dispatcher.retry(failed.outbox_id)
        [sent] = dispatch_messages(conveyor)
    assert sent.status == "done"
    assert [c["chat_id"] for c in bot.calls] == ["111", "222"]
    _rows, [message] = _manager_messages(conveyor, deal)
    assert message.status == "delivered" and message.to == "222"


def test_the_notification_is_written_in_the_managers_language(conveyor, tmp_path):
    with BotApi(TOKEN) as bot:
        conveyor.provider = router_from_toml(
            tmp_path, _telegram(bot.base_url), {"TELEGRAM_BOT_TOKEN": TOKEN}
        )
        conveyor.save_ruleset(messaging_funnel([NOTIFY]))
        conveyor.users.add("Olena", "manager", "olena-password-1")
        conveyor.users.set_language("Olena", "uk")
        conveyor.manager_channels.set("Olena", "telegram:555")
        conveyor.create_deal("outreach", title="Acme", manager="Olena")
        run_until_idle(conveyor)
    [call] = bot.calls
    assert (
        call["text"].startswith("Сповіщення: Call Acme back today")
        and "Угода: Acme" in call["text"]
    )

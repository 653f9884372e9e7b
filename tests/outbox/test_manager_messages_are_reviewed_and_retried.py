"""A message to a manager that failed or died is seen and retried like a client's: the builder's action
log and ``conveyor actions`` list it with its honest state, the gateway's answer and the manager as its
recipient; a manager limited to their own deals sees and retries only their own; every retry is
audited."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.core.access import Actor, ActorKind, Role
from engine.errors import Forbidden
from engine.outbox.dispatcher import dispatch_internal, dispatch_messages
from storage import repositories as repo
from tests.support.channels import BOT_TOKEN as TOKEN
from tests.support.channels import messaging_funnel, telegram_router
from tests.support.gateways import BotApi
from tests.support.sessions import db_session

NOTIFY = {"name": "notify_manager", "params": {"text": "Call {title} back today"}}


def _dead_notification(conveyor, tmp_path, bot: BotApi) -> int:
    conveyor.provider = telegram_router(tmp_path, bot.base_url)
    conveyor.save_ruleset(messaging_funnel([NOTIFY]))
    conveyor.manager_channels.set("Olena", "telegram:111")  # a chat that never started the bot
    conveyor.create_deal("outreach", title="Hooli", manager="Olena")
    dispatch_internal(conveyor)
    [dead] = dispatch_messages(conveyor)
    assert dead.status == "dead"
    return dead.outbox_id


def _manager(conveyor, name: str) -> int:
    return next(m.id for m in conveyor.deals.managers() if m.name == name)


def test_a_dead_message_to_a_manager_is_in_the_action_log_with_its_recipient(conveyor, tmp_path):
    with BotApi(TOKEN, "reject") as bot:
        outbox_id = _dead_notification(conveyor, tmp_path, bot)
    log = conveyor.reports.action_log(statuses=["dead"])
    [row] = log[log["id"] == outbox_id].to_dict("records")
    assert row["message"] == "dead" and row["action"] == "manager_message"
    assert row["recipient"] == "Olena" and row["manager_id"] == _manager(conveyor, "Olena")
    assert "chat not found" in row["error"]  # the gateway's answer
    assert row["deal_title"] == "Hooli"  # the deal it tells of
    assert "Olena" in row["summary"] and "telegram" in row["summary"]


def test_conveyor_actions_lists_and_retries_a_dead_message_to_a_manager(
    conveyor, backend, tmp_path
):
    with BotApi(TOKEN, "reject") as bot:
        outbox_id = _dead_notification(conveyor, tmp_path, bot)
    runner = CliRunner()
    url = backend
    listed = runner.invoke(main, ["--db", url, "actions"])
    assert listed.exit_code == 0, listed.output
    [line] = [ln for ln in listed.output.splitlines() if ln.startswith(f"#{outbox_id}")]
    assert "dead" in line and "manager_message" in line and "to Olena" in line
    assert "chat not found" in listed.output
    retried = runner.invoke(main, ["--db", url, "actions", "--retry", str(outbox_id)])
    assert retried.exit_code == 0, retried.output
    with db_session(conveyor) as s:
        row = repo.get_outbox(s, outbox_id)
        assert (row.status, row.attempts) == ("pending", 0)
    [entry] = [e for e in conveyor.audit.entries() if e.kind == "action_retried"]
    assert entry.actor.startswith("cli:") and entry.detail["action"] == outbox_id


def test_a_manager_sees_and_retries_only_their_own_messages(conveyor, tmp_path):
    with BotApi(TOKEN, "reject") as bot:
        outbox_id = _dead_notification(conveyor, tmp_path, bot)
    olena = Actor(ActorKind.USER, "olena", Role.MANAGER, _manager(conveyor, "Olena"), False)
    petro = Actor(ActorKind.USER, "petro", Role.MANAGER, _manager(conveyor, "Petro"), False)
    assert outbox_id not in set(conveyor.reports.action_log(actor=petro)["id"])
    assert outbox_id in set(conveyor.reports.action_log(actor=olena)["id"])
    with pytest.raises(Forbidden, match="another manager"):
        conveyor.retry_action(outbox_id, actor=petro)
    conveyor.retry_action(outbox_id, actor=olena)
    with db_session(conveyor) as s:
        assert repo.get_outbox(s, outbox_id).status == "pending"
    [entry] = [e for e in conveyor.audit.entries() if e.kind == "action_retried"]
    assert entry.actor == "olena"


def test_a_viewer_may_not_retry_a_message_to_a_manager(conveyor, tmp_path):
    with BotApi(TOKEN, "reject") as bot:
        outbox_id = _dead_notification(conveyor, tmp_path, bot)
    with pytest.raises(Forbidden):
        conveyor.retry_action(outbox_id, actor=Actor(ActorKind.USER, "v", Role.VIEWER))

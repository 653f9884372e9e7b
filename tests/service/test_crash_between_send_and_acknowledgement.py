"""A real ``conveyor engine`` with channels from ``conveyor.toml`` is SIGKILLed right after a gateway
accepted a message and before the engine recorded it, then restarted. Twilio's Messages API can be
asked (the recipient's newest messages): nothing is lost and nothing is sent twice. The Telegram Bot
API cannot be asked: the one message in flight is sent again (at least once), every other exactly once.
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from storage import repositories as repo
from storage.models import OutboxAction
from tests.support.channels import messaging_funnel
from tests.support.engine_world import (
    assert_exactly_once,
    seed,
    settled,
    start_engine,
    stop,
    wait_for,
)
from tests.support.gateways import BotApi, TwilioApi
from tests.support.sessions import db_session

pytestmark = pytest.mark.slow

SID, TOKEN, SENDER = "AC" + "7" * 32, "twilio-token-for-the-crash-test", "+15005550006"
BOT = "424242:AAE-crash-test-token_abcdefghij"


def _open_rows(c: Conveyor) -> int:
    with db_session(c) as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(OutboxAction)
                .where(OutboxAction.status.not_in(("done", "dead")))
            )
            or 0
        )


def _crash_and_restart(
    url: str, tmp_path: Path, config: str, env: dict[str, str], done, workers: int = 4
) -> None:
    path = tmp_path / "conveyor.toml"
    path.write_text(config)
    log = tmp_path / "engine.log"
    crashed = start_engine(
        url, log, crash_at="during_provider_call", config=path, env_extra=env, workers=workers
    )
    assert crashed.wait(timeout=60) == -signal.SIGKILL, log.read_text()
    assert "crash point during_provider_call reached" in log.read_text()
    engine = start_engine(url, log, config=path, env_extra=env, workers=workers)
    try:
        wait_for(done, 60, "the restarted engine to finish the work", [engine], [log])
    finally:
        assert stop(engine) == 0, log.read_text()[-3000:]
    assert (
        "channels: email → record" in log.read_text()
    )  # the start line names each channel's provider


def test_twilio_a_crash_after_twilio_accepted_is_reconciled_nothing_lost_nothing_twice(
    db_url, tmp_path
):
    world = seed(db_url, incoming=2, contract=4, bad_phone=1)
    with TwilioApi(SID, TOKEN) as api:
        config = (
            f'[channels.sms]\nprovider = "twilio"\naccount_sid = "{SID}"\nauth_token = "${{TWILIO_AUTH_TOKEN}}"\n'
            f'from = "{SENDER}"\nbase_url = "{api.base_url}"\n'
        )
        c = Conveyor(db_url)
        try:
            _crash_and_restart(
                db_url, tmp_path, config, {"TWILIO_AUTH_TOKEN": TOKEN}, lambda: settled(c, world)
            )
            assert_exactly_once(c, world)
            with db_session(c) as s:
                messages = [m for m in repo.list_messages(s) if m.provider == "twilio"]
            bodies = Counter(m.body for m in api.messages)
        finally:
            c.close()
    assert (
        len(api.messages) == 4 and max(bodies.values()) == 1
    )  # one SMS per good contract deal, none twice
    sent = {m.provider_ref for m in messages if m.status == "sent"}
    assert sent == {m.sid for m in api.messages}  # every one recorded with Twilio's own sid
    assert any(len(q) for q in api.lists)  # the one cut off was looked up, not resent


def test_telegram_a_crash_after_the_bot_api_answered_resends_only_the_message_in_flight(
    db_url, tmp_path
):
    c = Conveyor(db_url, clock=VirtualClock(datetime.now(UTC) - timedelta(hours=1)))
    try:
        c.save_ruleset(
            messaging_funnel(
                [
                    {
                        "name": "send_message",
                        "params": {"channel": "telegram", "text": "Hello {title}"},
                    }
                ]
            )
        )
        for i in range(4):
            c.create_deal(
                "outreach", title=f"Client {i}", fields={"telegram_chat_id": str(5000 + i)}
            )
    finally:
        c.close()
    with BotApi(BOT) as bot:
        config = f'[channels.telegram]\nprovider = "telegram"\ntoken = "${{BOT_TOKEN}}"\nbase_url = "{bot.base_url}"\n'
        c = Conveyor(db_url)
        try:
            _crash_and_restart(
                db_url, tmp_path, config, {"BOT_TOKEN": BOT}, lambda: _open_rows(c) == 0, workers=1
            )
            with db_session(c) as s:
                states = Counter(m.status for m in repo.list_messages(s))
        finally:
            c.close()
        per_chat = Counter(call["chat_id"] for call in bot.delivered)
    assert states == {"delivered": 4}  # nothing lost
    assert sorted(per_chat.values()) == [
        1,
        1,
        1,
        2,
    ]  # the one in flight at the crash twice, no other

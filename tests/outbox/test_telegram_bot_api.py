"""Telegram through a local server that speaks the Bot API (``POST /bot<token>/sendMessage``): the
answer's ``ok`` and ``message_id`` mean delivered; 429 waits its Retry-After (the attempt not counted,
the channel paused); 5xx and timeouts are retried; a refusal is dead with the Bot API's description."""

from __future__ import annotations

from datetime import timedelta

from engine.outbox.dispatcher import dispatch_messages
from storage import repositories as repo
from tests.support.channels import messaging_funnel, router_from_toml
from tests.support.gateways import BotApi
from tests.support.sessions import db_session

TOKEN = "123456:AAE-test-token_0123456789abcdef"
HELLO = {
    "name": "send_message",
    "params": {
        "channel": "telegram",
        "text": {
            "uk": "Вітаємо, {title}! Ваш менеджер зв'яжеться з вами.",
            "en": "Hello {title}! Your manager will be in touch.",
        },
    },
}


def _config(base_url: str, extra: str = "") -> str:
    return (
        f'[channels.telegram]\nprovider = "telegram"\ntoken = "${{TELEGRAM_BOT_TOKEN}}"\n'
        f'base_url = "{base_url}"\n{extra}'
    )


def _setup(conveyor, tmp_path, bot: BotApi, extra: str = "", timeout: str = "5") -> int:
    conveyor.save_ruleset(messaging_funnel([HELLO], language="uk"))
    conveyor.provider = router_from_toml(
        tmp_path,
        _config(bot.base_url, extra),
        {"TELEGRAM_BOT_TOKEN": TOKEN, "CONVEYOR_PROVIDER_TIMEOUT": timeout},
        clock=conveyor.clock,
    )
    return conveyor.create_deal("outreach", title="Acme", fields={"telegram_chat_id": "987654321"})


def _state(conveyor, deal: int):
    with db_session(conveyor) as s:
        [m] = repo.list_messages(s, deal)
        [row] = [a for a, _f in repo.list_outbox(s, deal_id=deal) if a.kind == "message"]
        return m, row


def test_send_message_reaches_the_bot_api_and_its_answer_means_delivered(conveyor, tmp_path):
    with BotApi(TOKEN) as bot:
        deal = _setup(conveyor, tmp_path, bot)
        [result] = dispatch_messages(conveyor)
    assert result.status == "done"
    [call] = bot.calls
    assert call["chat_id"] == "987654321" and call["content_type"] == "application/json"
    assert (
        call["text"] == "Вітаємо, Acme! Ваш менеджер зв'яжеться з вами."
    )  # the funnel's language: uk
    m, _row = _state(conveyor, deal)
    assert (
        m.status == "delivered" and m.provider == "telegram" and m.provider_ref == "987654321:101"
    )


def test_a_429_waits_the_retry_after_it_names_without_counting_an_attempt(
    conveyor, tmp_path, clock
):
    answers = iter(["rate429", "ok"])
    with BotApi(TOKEN, lambda _c: next(answers), retry_after=7) as bot:
        deal = _setup(conveyor, tmp_path, bot)
        [first] = dispatch_messages(conveyor)
        m, row = _state(conveyor, deal)
        assert (
            first.status == "pending"
            and "429" in first.error
            and "Too Many Requests" in first.error
        )
        assert (
            row.status == "pending" and row.attempts == 0
        )  # the gateway's wait is not the message's fault
        assert row.next_attempt_at == clock.now() + timedelta(seconds=7) and m.status == "sending"
        clock.advance(timedelta(seconds=6))
        assert dispatch_messages(conveyor) == []  # not before the gateway said
        clock.advance(timedelta(seconds=1))
        [second] = dispatch_messages(conveyor)
    assert second.status == "done" and len(bot.calls) == 2 and len(bot.delivered) == 1
    assert _state(conveyor, deal)[0].status == "delivered"


def test_a_429_pauses_the_whole_channel_for_that_long(tmp_path):
    from engine.errors import TransientSendError
    from engine.outbox.errors import RateLimited
    from engine.outbox.providers import OutgoingMessage

    with BotApi(TOKEN, "rate429", retry_after=30) as bot:
        router = router_from_toml(tmp_path, _config(bot.base_url), {"TELEGRAM_BOT_TOKEN": TOKEN})
        msg = OutgoingMessage("k-1", "telegram", "42", "hi", "D-1")
        try:
            router.send(msg)
        except RateLimited as exc:
            assert exc.retry_after == 30
        else:
            raise AssertionError("a 429 must raise RateLimited")
        # the next message on the channel is deferred by our own bucket: the gateway is not called again
        try:
            router.send(OutgoingMessage("k-2", "telegram", "42", "hi", "D-2"))
        except RateLimited as exc:
            assert 29 <= exc.retry_after <= 30 and isinstance(exc, TransientSendError)
        assert len(bot.calls) == 1


def test_server_errors_and_timeouts_are_retried_until_the_bot_api_accepts(
    conveyor, tmp_path, clock
):
    answers = iter(["error500", "slow", "ok"])
    with BotApi(TOKEN, lambda _c: next(answers), delay=1.5) as bot:
        deal = _setup(conveyor, tmp_path, bot, timeout="0.5")
        [first] = dispatch_messages(conveyor)
        assert first.status == "failed" and "HTTP 500" in first.error
        m, row = _state(conveyor, deal)
        assert m.status == "failed" and row.attempts == 1
        clock.set(row.next_attempt_at)
        [second] = dispatch_messages(conveyor)
        assert second.status == "failed" and "timed out after 0.5 s" in second.error
        clock.set(_state(conveyor, deal)[1].next_attempt_at)
        [third] = dispatch_messages(conveyor)
    assert third.status == "done"
    # The Bot API cannot say what a bot sent: the timed-out call that got through is sent again
    # (at least once, see docs/guarantees.md); an acknowledged one never is.
    assert len(bot.calls) == 3 and len(bot.delivered) == 2
    assert _state(conveyor, deal)[0].status == "delivered"


def test_a_chat_the_bot_cannot_write_to_is_dead_with_the_bot_apis_description(conveyor, tmp_path):
    with BotApi(TOKEN, "reject") as bot:
        deal = _setup(conveyor, tmp_path, bot)
        [result] = dispatch_messages(conveyor)
    assert result.status == "dead" and "HTTP 400: Bad Request: chat not found" in result.error
    m, row = _state(conveyor, deal)
    assert m.status == "dead" and row.last_error == result.error
    assert TOKEN not in result.error


def test_a_deal_without_a_chat_id_is_dead_before_any_call(conveyor, tmp_path):
    with BotApi(TOKEN) as bot:
        conveyor.save_ruleset(messaging_funnel([HELLO]))
        conveyor.provider = router_from_toml(
            tmp_path, _config(bot.base_url), {"TELEGRAM_BOT_TOKEN": TOKEN}
        )
        conveyor.create_deal("outreach", title="Acme", fields={"phone": "+380501234567"})
        [result] = dispatch_messages(conveyor)
    assert result.status == "dead" and "no Telegram chat id" in result.error and bot.calls == []

"""Each manager's daily digest (open tasks due today and overdue) is queued at the set hour in the
display zone and delivered through the outbox: exactly one per manager per day, across an engine
restart and with two engines on one database, driven by the virtual clock (no sleeps)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from engine.clock import VirtualClock
from engine.config import DigestConfig
from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import run_until_idle
from storage.models import Message, OutboxAction
from tests.support.channels import messaging_funnel, router_from_toml
from tests.support.gateways import BotApi
from tests.support.sessions import db_session

TOKEN = "123456:AAE-test-token_0123456789abcdef"
# 08:30 in Kyiv (UTC+2 in December): half an hour before the digest hour.
MORNING = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
TASKS = [
    {"name": "create_task", "params": {"title": "Call {title}", "due_in_hours": 3}},
    {"name": "create_task", "params": {"title": "Quote for {title}", "due_in_hours": 48}},
]


def _engine(backend: str, clock: VirtualClock, bot: BotApi, tmp_path) -> Conveyor:
    c = Conveyor(backend, clock=clock)
    c.provider = router_from_toml(
        tmp_path,
        f'[channels.telegram]\nprovider = "telegram"\ntoken = "${{TELEGRAM_BOT_TOKEN}}"\n'
        f'base_url = "{bot.base_url}"\n',
        {"TELEGRAM_BOT_TOKEN": TOKEN},
    )
    c.digests.configure(DigestConfig(hour=9))
    return c


def _digests(conveyor: Conveyor) -> list[tuple[str, str]]:
    with db_session(conveyor) as s:
        rows = s.execute(
            select(OutboxAction.idempotency_key, Message.status)
            .join(Message, Message.outbox_id == OutboxAction.id, isouter=True)
            .where(OutboxAction.action == "manager_digest")
            .order_by(OutboxAction.id)
        ).all()
    return [(k, st or "") for k, st in rows]


def _world(backend: str, tmp_path, bot: BotApi) -> tuple[Conveyor, VirtualClock]:
    # Yesterday a deal got two tasks: one is overdue by this morning, one is due tomorrow.
    clock = VirtualClock(MORNING - timedelta(days=1))
    c = _engine(backend, clock, bot, tmp_path)
    c.save_ruleset(messaging_funnel(TASKS))
    c.add_manager("Olena")
    c.add_manager("Taras")  # nothing on his list: no digest for him
    c.manager_channels.set("Olena", "telegram:700")
    c.create_deal("outreach", title="Acme", manager="Olena")
    run_until_idle(c)
    clock.set(MORNING)
    return c, clock


def test_the_digest_is_sent_once_at_the_hour_and_again_the_next_day(backend, tmp_path):
    with BotApi(TOKEN) as bot:
        c, clock = _world(backend, tmp_path, bot)
        assert c.digests.queue_due() == 0  # 08:30 Kyiv: not yet
        assert c.digests.next_at(clock.now()) == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
        clock.set(c.digests.next_at(clock.now()))
        assert c.digests.queue_due() == 1
        assert c.digests.queue_due() == 0  # the same wake-up twice, the same day: nothing more
        run_until_idle(c)
        [call] = bot.calls
        assert call["chat_id"] == "700"
        assert "1 overdue task" in call["text"] and "Call Acme" in call["text"]
        assert "Quote for Acme" not in call["text"]  # due tomorrow
        clock.advance(timedelta(hours=8))
        assert c.digests.queue_due() == 0
        clock.set(c.digests.next_at(clock.now()))  # tomorrow 09:00 Kyiv: the quote is due today
        assert c.digests.queue_due() == 1
        run_until_idle(c)
    olena = _olena(c)
    assert _digests(c) == [
        (f"digest:{olena}:2026-12-01", "delivered"),
        (f"digest:{olena}:2026-12-02", "delivered"),
    ]
    assert len(bot.calls) == 2 and "Quote for Acme" in bot.calls[1]["text"]
    c.close()


def _olena(c: Conveyor) -> int:
    return next(m.id for m in c.deals.managers() if m.name == "Olena")


def test_a_restarted_engine_catches_up_but_never_sends_the_day_twice(backend, tmp_path):
    with BotApi(TOKEN) as bot:
        c, clock = _world(backend, tmp_path, bot)
        clock.set(MORNING + timedelta(hours=1))  # 09:30: the engine was down at 09:00
        assert c.digests.queue_due() == 1  # what the start-up catch-up does
        run_until_idle(c)
        c.close()
        restarted = _engine(backend, clock, bot, tmp_path)
        assert restarted.digests.queue_due() == 0
        run_until_idle(restarted)
    assert [s for _k, s in _digests(restarted)] == ["delivered"] and len(bot.calls) == 1
    restarted.close()


def test_two_engines_waking_at_the_same_moment_queue_one_digest(backend, tmp_path):
    with BotApi(TOKEN) as bot:
        c, clock = _world(backend, tmp_path, bot)
        other = _engine(backend, clock, bot, tmp_path)
        clock.set(MORNING + timedelta(minutes=30))
        start = threading.Barrier(2)
        counts: list[int] = []

        def wake(engine: Conveyor) -> None:
            start.wait()
            counts.append(engine.digests.queue_due())

        threads = [threading.Thread(target=wake, args=(e,)) for e in (c, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        run_until_idle(other)
        run_until_idle(c)
        other.close()
    assert sorted(counts) == [0, 1]
    assert len(_digests(c)) == 1 and len(bot.calls) == 1
    c.close()


def test_the_wake_up_is_an_apscheduler_cron_job_at_the_hour_in_the_display_zone(tmp_path):
    from apscheduler.schedulers.background import BackgroundScheduler

    c = Conveyor(f"sqlite:///{tmp_path / 'c.db'}", clock=VirtualClock(MORNING))
    c.digests.configure(DigestConfig(hour=9, minute=15))
    scheduler = BackgroundScheduler(timezone=UTC)
    job = c.digests.schedule(scheduler)
    fire = job.trigger.get_next_fire_time(None, MORNING)
    assert fire.astimezone(UTC) == datetime(2026, 12, 1, 7, 15, tzinfo=UTC)
    # Summer time: 09:15 in Kyiv is 06:15 UTC.
    summer = job.trigger.get_next_fire_time(None, datetime(2026, 7, 1, tzinfo=UTC))
    assert summer.astimezone(UTC) == datetime(2026, 7, 1, 6, 15, tzinfo=UTC)
    c.close()


def test_the_digest_says_what_my_day_says_in_the_managers_language(backend, tmp_path):
    with BotApi(TOKEN) as bot:
        c, clock = _world(backend, tmp_path, bot)
        c.users.add("Olena", "manager", "olena-password-1")  # takes over Olena's managers row
        c.users.set_language("Olena", "uk")
        c.add_manager("Petro")
        c.manager_channels.set("Petro", "telegram:800")
        c.create_deal("outreach", title="Globex", manager="Petro", fields={"amount": 12500})
        run_until_idle(c)
        clock.set(MORNING + timedelta(days=1, minutes=30))  # Wednesday 09:00 Kyiv
        day = c.day.of(_olena(c), now=clock.now())
        assert c.digests.queue_due() == 2
        run_until_idle(c)
    by_chat = {call["chat_id"]: call["text"] for call in bot.calls}
    olena, petro = by_chat["700"], by_chat["800"]
    # Olena reads Ukrainian: Babel's day and month, the catalogue's words, My day's reasons.
    assert "середа, 2 грудня" in olena and "Доброго ранку, Olena" in olena
    assert "прострочен" in olena  # "1 прострочена задача"
    assert "Без дій уже" in olena  # the deal nobody touched for a day, as My day says
    # The same lists as her My day page: every task and deal it shows is in the digest.
    for task in day.overdue + day.today:
        assert task.title in olena
    assert day.deals and all(d.deal_title in olena for d in day.deals)
    # Petro has no language of his own: the default (English), his deal's amount the English way.
    assert "Wednesday, 2 December" in petro and "Good morning, Petro" in petro
    assert "12,500" in petro

"""The engine service wakes the daily digest with an APScheduler cron job at the set hour, and an
engine that starts after the hour catches up at once: the digest is queued (once) by the service."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from sqlalchemy import select

from engine.clock import VirtualClock
from engine.config import DigestConfig
from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import run_until_idle
from engine.service.runner import EngineService
from storage.models import OutboxAction
from tests.support.channels import messaging_funnel
from tests.support.sessions import db_session

TASK = {"name": "create_task", "params": {"title": "Call {title}", "due_in_hours": 1}}


def _digest_keys(c: Conveyor) -> list[str]:
    with db_session(c) as s:
        return list(
            s.scalars(
                select(OutboxAction.idempotency_key).where(OutboxAction.action == "manager_digest")
            )
        )


def test_an_engine_started_after_the_hour_queues_todays_digest_once(db_url):
    clock = VirtualClock(datetime(2026, 12, 1, 5, 0, tzinfo=UTC))  # 07:00 in Kyiv
    c = Conveyor(db_url, clock=clock)
    try:
        c.save_ruleset(messaging_funnel([TASK]))
        c.add_manager("Olena")
        c.create_deal("outreach", title="Acme", manager="Olena")
        run_until_idle(c)
        c.digests.configure(DigestConfig(hour=8))
        clock.set(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))  # 10:00 in Kyiv: the hour has passed
        for _ in range(2):  # a start, a stop, a second start: one digest
            service = EngineService(c, tick_seconds=3600, db_url=db_url)
            thread = service.serve_in_thread()
            deadline = time.monotonic() + 30
            while not service.digest_wake_ups and time.monotonic() < deadline:
                time.sleep(0.05)  # polling for the start-up catch-up, not a fixed wait
            job = service.digest_wake_up()
            service.stop()
            thread.join(30)
            assert job is not None
            tomorrow = job.trigger.get_next_fire_time(None, datetime(2026, 12, 2, tzinfo=UTC))
            assert tomorrow == datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # 08:00 in Kyiv
        assert len(_digest_keys(c)) == 1
    finally:
        c.close()


def test_a_stop_that_comes_while_the_digest_scheduler_starts_stops_it_cleanly(db_url, monkeypatch):
    """A SIGTERM a few milliseconds after the start: the stop used to find APScheduler "running" with
    its thread not yet started, join it, and the engine exited 2 ("cannot join thread before it is
    started"). The stop is made to arrive exactly there: when APScheduler starts its thread."""
    c = Conveyor(db_url)
    try:
        c.digests.configure(DigestConfig(hour=8))
        service = EngineService(c, tick_seconds=3600, db_url=db_url)
        stop_errors: list[BaseException] = []
        real_start = threading.Thread.start

        def stop_now() -> None:
            try:
                service.stop()
            except BaseException as exc:  # noqa: BLE001 - what the test looks for
                stop_errors.append(exc)

        def start(thread: threading.Thread) -> None:
            if thread.name == "APScheduler":
                stopper = threading.Thread(target=stop_now, name="stopper")
                real_start(stopper)
                stopper.join(1)  # the stop either finishes here or waits for this start
                monkeypatch.setattr(threading.Thread, "start", real_start)
            real_start(thread)

        monkeypatch.setattr(threading.Thread, "start", start)
        thread = service.serve_in_thread()
        thread.join(30)
        assert not thread.is_alive()
        assert stop_errors == []
        assert service.digest_wake_up() is None  # the scheduler was shut down, not left running
    finally:
        c.close()

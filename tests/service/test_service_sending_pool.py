"""``--workers N`` keeps up to N gateway calls in flight while messages keep arriving (a real engine
process, a real slow HTTP gateway on 127.0.0.1, deals created over time by another process's writes).
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from engine.core.conveyor import Conveyor
from storage.models import OutboxAction
from tests.support.engine_world import (
    COUNTERPARTY,
    GOOD_PHONE,
    seed,
    settled,
    start_engine,
    stop,
    wait_for,
)
from tests.support.sessions import db_session
from tests.support.webhook import Gateway

pytestmark = pytest.mark.slow

ARRIVALS_PER_SECOND = 2.45
ARRIVAL_SECONDS = 20


def _create_over_time(
    url: str, count: int, every: float, created: list[int], failed: list[BaseException]
) -> None:
    c = Conveyor(url)
    try:
        next_at = time.monotonic()
        for i in range(count):
            created.append(
                c.create_deal(
                    "techflow",
                    title=f"Contract {i}",
                    stage="contract",
                    fields={"phone": GOOD_PHONE, "amount": 100 + i, **COUNTERPARTY},
                )
            )
            next_at += every
            time.sleep(max(0.0, next_at - time.monotonic()))
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        failed.append(exc)
    finally:
        c.close()


def _most_calls_started_within_a_second(starts: list[float]) -> int:
    """Each call takes the gateway 1 s, so calls started less than 1 s apart were in flight together."""
    starts = sorted(starts)
    best, first = 0, 0
    for last, at in enumerate(starts):
        while at - starts[first] >= 0.95:
            first += 1
        best = max(best, last - first + 1)
    return best


def _messages_not_done(c: Conveyor) -> int:
    with db_session(c) as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(OutboxAction)
                .where(OutboxAction.kind == "message", OutboxAction.status != "done")
            )
            or 0
        )


def test_four_workers_keep_several_slow_gateway_calls_in_flight_while_messages_arrive(
    db_url, tmp_path
):
    world = seed(db_url, incoming=0, contract=0)
    log = tmp_path / "engine.log"
    count = int(ARRIVALS_PER_SECOND * ARRIVAL_SECONDS)
    with Gateway("slow", delay=1.0) as gw:
        engine = start_engine(
            db_url, log, provider=gw.url, timeout=10, workers=4, tick=0.5, lease=30
        )
        c = Conveyor(db_url)
        try:
            wait_for(
                lambda: " started: tick every" in log.read_text(),
                60,
                "the engine to start",
                [engine],
                [log],
            )
            arrivals_from = time.monotonic()
            created: list[int] = []
            failed: list[BaseException] = []
            writer = threading.Thread(
                target=_create_over_time,
                args=(db_url, count, 1 / ARRIVALS_PER_SECOND, created, failed),
                daemon=True,
            )
            writer.start()
            writer.join(ARRIVAL_SECONDS * 5)
            assert not failed and len(created) == count
            behind_when_arrivals_stopped = _messages_not_done(c)
            world.contract = created
            # One sender at 1 s a call falls ~1.5 messages further behind every second (about 30 here);
            # four keep up, and whatever is left drains in a few calls.
            wait_for(lambda: settled(c, world), 60, "every message sent", [engine], [log])
        finally:
            assert stop(engine) == 0
            c.close()
        keys = gw.keys()
        max_in_flight = gw.max_in_flight
        # Calls in the second half of the arrivals: a pool that shrank to one sender shows it there.
        late = [m["at"] for m in gw.received if m["at"] >= arrivals_from + ARRIVAL_SECONDS / 2]
    assert len(keys) == count and set(keys.values()) == {1}, "each message sent exactly once"
    assert 3 <= max_in_flight <= 4, f"at most 4 and at least 3 calls in flight, saw {max_in_flight}"
    assert _most_calls_started_within_a_second(late) >= 3, (
        "the pool shrank while messages kept arriving"
    )
    assert behind_when_arrivals_stopped <= 6, (
        f"{behind_when_arrivals_stopped} messages not yet sent when the last of {count} arrived"
    )

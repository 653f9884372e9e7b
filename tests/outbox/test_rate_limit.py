"""The token bucket of a channel: its rate and burst, a short wait slept, a long one deferred, and a
gateway's Retry-After pausing the channel; on a clock the test moves (no wall-clock assertions)."""

from __future__ import annotations

import pytest

from engine.outbox.errors import RateLimited
from engine.outbox.ratelimit import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_a_burst_goes_at_once_then_one_call_per_interval():
    t = FakeTime()
    bucket = TokenBucket(2.0, 3, channel="sms", clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        assert bucket.acquire(10) == 0
    assert bucket.acquire(10) == pytest.approx(0.5)  # the fourth waits for one token at 2 a second
    assert bucket.acquire(10) == pytest.approx(0.5)
    assert t.slept == [0.5, 0.5]


def test_a_wait_longer_than_the_limit_defers_the_message_and_takes_no_token():
    t = FakeTime()
    bucket = TokenBucket(0.1, 1, channel="sms", clock=t.clock, sleep=t.sleep)
    bucket.acquire(1)
    with pytest.raises(RateLimited, match="sms channel is rate limited") as caught:
        bucket.acquire(1)
    assert caught.value.retry_after == pytest.approx(10)
    t.now += 10
    assert bucket.acquire(1) == 0  # the refused caller took nothing: the token is there after 10 s


def test_a_retry_after_pauses_the_channel_then_the_rate_applies_again():
    t = FakeTime()
    bucket = TokenBucket(1.0, 5, channel="telegram", clock=t.clock, sleep=t.sleep)
    bucket.pause(30)
    with pytest.raises(RateLimited) as caught:
        bucket.acquire(5)
    assert caught.value.retry_after == pytest.approx(30)
    t.now += 29
    assert bucket.acquire(5) == pytest.approx(1)  # slept the last second of the pause
    assert bucket.acquire(5) == pytest.approx(1)  # then one a second, not a burst


def test_an_unlimited_channel_never_waits_unless_paused():
    t = FakeTime()
    bucket = TokenBucket(None, channel="webhook", clock=t.clock, sleep=t.sleep)
    assert [bucket.acquire(0) for _ in range(100)] == [0] * 100
    bucket.pause(2)
    assert bucket.acquire(5) == pytest.approx(2)

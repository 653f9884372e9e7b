"""A token bucket per channel: the engine never sends faster than the gateway allows.

Each channel's bucket refills at ``rate`` tokens a second up to ``burst``. A sender takes a token
before each gateway call, waiting for one when the wait is short (at most ``max_wait``); a longer
wait is not spent holding a sender thread: the message is deferred (``RateLimited``) until then.
A gateway's own ``429 Retry-After: N`` pauses the whole channel for N seconds (``pause``). The
bucket lives in one engine process: several engines each keep their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from engine.outbox.errors import RateLimited

__all__ = ["TokenBucket"]


class TokenBucket:
    """Thread-safe; ``clock`` is monotonic seconds and ``sleep`` waits (both injectable for tests)."""

    def __init__(
        self,
        rate: float | None,
        burst: float | None = None,
        *,
        channel: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate is not None and rate <= 0:
            raise ValueError(f"rate for channel {channel!r} must be positive, got {rate}")
        self.rate = rate
        self.burst = float(burst if burst is not None else max(1.0, rate or 1.0))
        self.channel = channel
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()  # tokens counted as of this moment; in the future while paused

    def acquire(self, max_wait: float) -> float:
        """Take a token, sleeping up to ``max_wait`` for it; returns the time slept.

        Raises ``RateLimited`` (taking nothing) when the token is further away than ``max_wait``.
        """
        with self._lock:
            now = self._clock()
            if now > self._stamp:
                if self.rate is not None:
                    self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
            wait = self._stamp - now  # > 0 while the gateway asked us to pause
            if self.rate is not None and self._tokens < 1:
                wait += (1 - self._tokens) / self.rate
            if wait > max_wait:
                raise RateLimited(
                    f"the {self.channel} channel is rate limited for {wait:.1f} s more", wait
                )
            if self.rate is not None:
                self._tokens -= (
                    1  # may go negative: the next caller waits for the refill behind this one
                )
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """The gateway said "not before ``seconds`` from now" (429 with Retry-After): no calls till then."""
        with self._lock:
            now = self._clock()
            if now > self._stamp and self.rate is not None:
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = max(self._stamp, now + max(0.0, seconds))
            self._tokens = min(
                self._tokens, 1.0
            )  # one call when the pause ends, then the rate again

"""``conveyor`` with a wall clock that can be stepped from outside: the test's stand-in for NTP or a VM resume.

A test cannot step the machine's real clock, so this runs the real CLI in a process whose Python wall
clock (``datetime.now`` / ``utcnow`` / ``today``, what APScheduler and ``SystemClock`` read) is the real
one plus the number of seconds written in ``$CONVEYOR_TEST_CLOCK_STEP_FILE`` (absent: no step).
``time.monotonic`` is left alone, as a real clock step leaves it. Usage: ``python clock_step_engine.py
--db URL engine ...`` (the ``conveyor`` arguments).
"""

from __future__ import annotations

import datetime as _dt
import os

# C extensions that check datetime's layout when they load (pandas, which the engine now imports at
# start-up) must load before the swap below: a subclass with a bigger instance segfaults them.
import pandas  # noqa: F401

_REAL = _dt.datetime
_STEP_FILE = os.environ["CONVEYOR_TEST_CLOCK_STEP_FILE"]


def _step() -> _dt.timedelta:
    try:
        with open(_STEP_FILE) as fh:
            return _dt.timedelta(seconds=float(fh.read().strip() or 0))
    except (FileNotFoundError, ValueError):
        return _dt.timedelta(0)


class _AnyDatetime(type):
    # Real datetime objects (from C code, from before the patch) still count as datetimes.
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _REAL)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _REAL)


class SteppedDatetime(_REAL, metaclass=_AnyDatetime):
    @classmethod
    def now(cls, tz=None):
        return _REAL.now(tz) + _step()

    @classmethod
    def utcnow(cls):
        return _REAL.now(_dt.UTC).replace(tzinfo=None) + _step()

    @classmethod
    def today(cls):
        return cls.now()


_dt.datetime = SteppedDatetime  # before anything imports it by name

if __name__ == "__main__":
    from engine.cli import main

    main(prog_name="conveyor")

"""A step of the wall clock (NTP, a VM resumed), back or forward by an hour, neither pauses nor
rushes the engine: ticks and dispatch go on, because its loops keep time on the monotonic clock.

The engine is a real process (see ``clock_step_engine.py``: its wall clock steps when the test says
so); the gateway is a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from tests.support.engine_world import COUNTERPARTY, GOOD_PHONE, ROOT, seed, stop, wait_for
from tests.support.webhook import Gateway

pytestmark = pytest.mark.slow

HOUR = 3600


def _ticks(log) -> int:
    return log.read_text(errors="replace").count("tick: examined")


@pytest.mark.parametrize("step", [-HOUR, HOUR], ids=["back-an-hour", "forward-an-hour"])
def test_ticks_and_sending_go_on_through_a_wall_clock_step(db_url, tmp_path, step):
    seed(db_url, incoming=0, contract=0)
    log = tmp_path / "engine.log"
    step_file = tmp_path / "clock-step"
    with Gateway("ok") as gw:
        env = {k: v for k, v in os.environ.items() if k not in ("CONVEYOR_DB", "CONVEYOR_CRASH_AT")}
        env.update(
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT),
            CONVEYOR_PROVIDER=gw.url,
            CONVEYOR_TEST_CLOCK_STEP_FILE=str(step_file),
        )
        with open(log, "ab") as fh:
            engine = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "tests" / "service" / "clock_step_engine.py"),
                    "--db",
                    db_url,
                    "engine",
                    "--tick-seconds",
                    "0.3",
                    "--workers",
                    "2",
                ],
                cwd=ROOT,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        engine.log, engine.log_start = log, 0  # type: ignore[attr-defined]
        try:
            wait_for(lambda: _ticks(log) >= 3, 60, "the first ticks", [engine], [log])
            step_file.write_text(str(step))  # the engine's wall clock jumps now
            stepped_at = _ticks(log)
            # Ticks every 0.3 s: a paused engine would add none for an hour (back) or race (forward).
            wait_for(
                lambda: _ticks(log) >= stepped_at + 10,
                30,
                "ticks after the clock step",
                [engine],
                [log],
            )
            # A deal created after the step, on the engine's (stepped) time: its invoice is made and
            # its SMS sent although every row written before the step is "in the future" or "late".
            c = Conveyor(db_url, clock=VirtualClock(datetime.now(UTC) + timedelta(seconds=step)))
            try:
                c.create_deal(
                    "techflow",
                    title="After the step",
                    stage="contract",
                    fields={"phone": GOOD_PHONE, "amount": 100, **COUNTERPARTY},
                )
            finally:
                c.close()
            wait_for(
                lambda: len(gw.keys()) == 1,
                30,
                "the SMS of a deal created after the step",
                [engine],
                [log],
            )
            ticks = _ticks(log)
            wait_for(lambda: _ticks(log) >= ticks + 5, 30, "ticks going on", [engine], [log])
        finally:
            assert stop(engine) == 0
    assert "Traceback" not in log.read_text(errors="replace")

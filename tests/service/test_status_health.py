"""``conveyor status`` tells a dead engine from a live one, never shows a negative age, answers while
another connection holds the SQLite write lock; and an engine whose SQLite file is deleted or replaced
under it stops with a clear error instead of carrying on with a new, empty database.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from engine.service.status import Health, health, render
from storage import repositories as repo
from tests.support.engine_world import ROOT, seed, start_engine, wait_for
from tests.support.sessions import db_session

pytestmark = pytest.mark.slow


def _status(db_url: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CONVEYOR_DB"}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "--db", db_url, "status"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _nothing_ready(db_url: str) -> bool:
    c = Conveyor(db_url)
    try:
        return health(c).oldest_ready_at is None
    finally:
        c.close()


def test_an_engine_killed_45_seconds_ago_reads_not_responding_and_health_needs_attention(
    db_url, tmp_path
):
    seed(db_url, incoming=1, contract=0)
    log = tmp_path / "engine.log"
    engine = start_engine(db_url, log)
    try:
        wait_for(lambda: "tick: examined" in log.read_text(), 60, "a first tick", [engine], [log])
        # The seeded actions have been due for two days: health is "ok" only once the engine has
        # run them, which on a busy machine can come a while after the first tick.
        wait_for(lambda: _nothing_ready(db_url), 60, "the due actions to run", [engine], [log])
    finally:
        engine.send_signal(signal.SIGKILL)
        engine.wait(timeout=30)
    c = Conveyor(db_url)
    with db_session(c) as s:
        [beat] = repo.list_heartbeats(s)
    c.close()
    # Seen right after the kill, the engine still counts as running (its heartbeat is fresh) ...
    soon = Conveyor(db_url, clock=VirtualClock(beat.seen_at + timedelta(seconds=5)))
    # ... and 45 s later, after more than three missed 10-second heartbeats, it no longer does.
    later = Conveyor(db_url, clock=VirtualClock(beat.seen_at + timedelta(seconds=45)))
    try:
        fresh, stale = health(soon), health(later)
    finally:
        soon.close()
        later.close()
    engine_id = beat.engine_id
    assert f"{engine_id:<40} running" in render(fresh) and "health:         ok" in render(fresh)
    text = render(stale)
    assert "engines:        0 seen recently, 1 known" in text
    assert f"{engine_id:<40} not responding" in text and "seen 45 s ago" in text
    assert "health:         ATTENTION" in text
    assert f"engine {engine_id} is not responding: last heartbeat 45 s ago" in text


def test_a_heartbeat_from_a_clock_ahead_of_ours_reads_zero_seconds_ago_never_negative(db_url):
    c = Conveyor(db_url)
    ahead = datetime.now(UTC) + timedelta(
        seconds=22
    )  # an engine on a host whose clock runs 22 s fast
    with db_session(c) as s:
        repo.upsert_heartbeat(
            s,
            "web9:77:abcdef",
            host="web9",
            pid=77,
            started_at=ahead,
            seen_at=ahead,
            last_tick_at=ahead,
            last_tick_seconds=0.05,
            last_tick_summary={"tick_seconds": 60, "deals_failed": 0},
        )
    c.close()
    out = _status(db_url)
    assert out.returncode == 0, out.stderr
    assert "-" not in "".join(
        line.split(" ago")[0][-8:] for line in out.stdout.splitlines() if " ago" in line
    )
    assert "(0 s ago)" in out.stdout and "running        seen 0 s ago" in out.stdout
    assert "health:         ok" in out.stdout


def test_status_answers_while_another_connection_holds_the_sqlite_write_lock(db_url):
    seed(db_url, incoming=2, contract=0)
    path = db_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute(
            "UPDATE deals SET title = title || '!'"
        )  # a writer in the middle of its work
        out = _status(
            db_url, timeout=20
        )  # the busy timeout is 30 s: waiting for the lock would time out here
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert out.returncode == 0, out.stderr
    assert "actions:        pending" in out.stdout and "health:" in out.stdout


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_an_engine_stops_with_a_clear_error_when_its_sqlite_file_is_deleted_or_replaced(
    db_url, tmp_path, how
):
    seed(db_url, incoming=1, contract=0)
    path = db_url.removeprefix("sqlite:///")
    log = tmp_path / "engine.log"
    engine = start_engine(db_url, log)
    try:
        wait_for(lambda: "tick: examined" in log.read_text(), 60, "a first tick", [engine], [log])
        if how == "deleted":
            os.remove(path)
        else:
            other = tmp_path / "other.db"
            sqlite3.connect(other).close()
            os.replace(other, path)
        code = engine.wait(timeout=30)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    text = log.read_text()
    expected = (
        "was deleted while the engine ran"
        if how == "deleted"
        else "was replaced by another file while"
    )
    assert code == 1, text[-2000:]
    # (the log may mask parts of the path that look like secrets, so only its end is compared)
    assert (
        "error: the SQLite database /" in text and f"/{os.path.basename(path)} {expected}" in text
    )
    assert "Traceback" not in text


def test_status_flags_deals_the_last_tick_could_not_evaluate(clock):
    now = clock.now()
    text = render(
        Health(
            now=now,
            counts={},
            oldest_pending_at=None,
            oldest_ready_at=None,
            last_tick_at=now,
            last_tick_seconds=0.2,
            last_tick_failed=2,
        )
    )
    assert "2 deal(s) failed" in text and "ATTENTION" in text
    assert "could not evaluate 2 deal(s): see the engine log" in text

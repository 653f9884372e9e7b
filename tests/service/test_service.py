"""``conveyor engine`` as a real process: SQLite settings, one engine per SQLite file, catch-up after
downtime, clean SIGTERM shutdown, what each tick logs, and ``conveyor status``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from engine.cli import main as cli
from engine.core.conveyor import Conveyor
from storage import repositories as repo
from storage.db import make_engine, session_factory, transaction
from tests.support.engine_world import ROOT, seed, settled, start_engine, stop, wait_for
from tests.support.sessions import db_session
from tests.support.webhook import Gateway

pytestmark = pytest.mark.slow


def test_sqlite_connections_use_wal_full_sync_foreign_keys_and_a_busy_timeout(db_url):
    Conveyor(db_url).close()  # create the schema
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragmas == {
            "journal_mode": "wal",
            "synchronous": 2,
            "foreign_keys": 1,
            "busy_timeout": 30000,
        }
        # BEGIN IMMEDIATE: a transaction holds the write lock from its start, even before it writes,
        # so a second writer waits at BEGIN instead of failing half-way through its work.
        with transaction(session_factory(engine)) as s:
            s.execute(text("SELECT 1"))
            other = sqlite3.connect(
                db_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None
            )
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
            other.close()
    finally:
        engine.dispose()


def test_one_engine_per_sqlite_file_logs_each_tick_and_reports_status(db_url, tmp_path):
    seed(db_url, incoming=3, contract=0)
    log = tmp_path / "engine.log"
    first = start_engine(db_url, log)
    try:
        wait_for(lambda: "tick: examined" in log.read_text(), 60, "the first tick", [first], [log])
        second = subprocess.run(
            [sys.executable, "-m", "engine.cli", "engine", "--db", db_url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"another conveyor engine (pid {first.pid}) already runs on" in second.stderr
        assert (
            "SQLite supports one engine process" in second.stderr
            and "Traceback" not in second.stderr
        )
        status = CliRunner().invoke(cli, ["status", "--db", db_url])
        assert status.exit_code == 0
        assert "engines:        1 seen recently" in status.output and "running" in status.output
        assert "last tick:      never" not in status.output
    finally:
        assert stop(first) == 0
    text_ = log.read_text()
    assert (
        "tick: examined 3 deals, fired 3 rules, queued 3 actions" in text_
    )  # the three due reminders
    assert "stopped cleanly" in text_
    status = CliRunner().invoke(cli, ["--db", db_url, "status"])
    assert (
        "engines:        0 seen recently, 1 known" in status.output and "stopped" in status.output
    )


def test_reminders_due_during_downtime_fire_once_at_the_next_tick_stamped_due_and_fired(
    db_url, tmp_path
):
    created = datetime.now(UTC) - timedelta(hours=30)  # due 6 hours ago, while no engine ran
    world = seed(db_url, incoming=4, contract=0, hours_ago=30)
    log = tmp_path / "engine.log"
    for _restart in range(2):
        engine = start_engine(db_url, log)
        c = Conveyor(db_url)
        try:
            wait_for(lambda: settled(c, world), 60, "the catch-up", [engine], [log])  # noqa: B023
        finally:
            assert stop(engine) == 0
        with db_session(c) as s:
            reminders = [f for f in repo.list_firings(s) if f.rule_id == "incoming_idle_24h"]
        c.close()
        assert len(reminders) == 4  # once each, also after the restart
        for f in reminders:
            assert abs(f.due_at - (created + timedelta(hours=24))) < timedelta(minutes=1)
            assert f.fired_at - f.due_at > timedelta(hours=5)  # late, and it says so


def test_sigterm_finishes_the_message_in_hand_and_releases_nothing_half_done(db_url, tmp_path):
    world = seed(db_url, incoming=0, contract=3)
    log = tmp_path / "engine.log"
    with Gateway("slow", delay=3) as gw:
        engine = start_engine(db_url, log, provider=gw.url, timeout=30, workers=1)
        wait_for(lambda: gw.in_flight == 1, 60, "a message in flight", [engine], [log])
        assert stop(engine) == 0  # SIGTERM while the gateway is still answering
        keys = gw.keys()
    assert "SIGTERM received, finishing the action in hand" in log.read_text()
    c = Conveyor(db_url)
    with db_session(c) as s:
        messages = [a for a, _f in repo.list_outbox(s) if a.kind == "message"]
    # the one in hand was finished and recorded; the others were not started and wait, unclaimed
    done = [a for a in messages if a.status == "done"]
    assert len(done) == 1 and keys == {done[0].idempotency_key: 1}
    assert all(a.claimed_by is None for a in messages)
    assert all(a.status == "pending" for a in messages if a not in done)
    # a new engine finishes the rest, sending nothing twice
    with Gateway("ok") as gw2:
        engine = start_engine(db_url, log, provider=gw2.url)
        try:
            wait_for(lambda: settled(c, world), 60, "the rest", [engine], [log])
        finally:
            assert stop(engine) == 0
        assert sorted(gw2.keys().values()) == [1, 1]
    c.close()


@pytest.mark.parametrize(
    "option", ["--tick-seconds", "--workers", "--lease-seconds", "--max-attempts"]
)
def test_engine_options_must_be_positive(db_url, option):
    out = CliRunner().invoke(cli, ["--db", db_url, "engine", option, "0"])
    assert out.exit_code == 1 and f"error: {option} must be positive, got 0" in out.output


@pytest.mark.postgres
def test_the_service_commands_work_on_postgresql(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEYOR_DB", pg_url)  # as an operator would set it
    runner = CliRunner()
    init = subprocess.run(
        [sys.executable, "-m", "engine.cli", "init", "--load", str(ROOT / "sample_rules")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0 and "saved techflow version 1" in init.stdout
    world = seed(pg_url, incoming=2, contract=1, bad_phone=1)
    log = tmp_path / "engine.log"
    engine = start_engine(pg_url, log)
    c = Conveyor(pg_url)
    try:
        wait_for(lambda: settled(c, world), 60, "the engine on PostgreSQL", [engine], [log])
        status = runner.invoke(cli, ["status"])
        assert "engines:        1 seen recently" in status.output
        # 9 of the deals' own actions done, plus the messages recorded for their managers
        with db_session(c) as s:
            to_managers = s.execute(
                text(
                    "SELECT count(*) FROM outbox WHERE kind = 'message' AND manager_id IS NOT NULL"
                )
            ).scalar_one()
        assert "dead 1" in status.output and f"done {9 + to_managers}" in status.output, (
            status.output
        )
    finally:
        assert stop(engine) == 0
        c.close()
    dead = runner.invoke(cli, ["actions", "--status", "dead"])
    assert dead.exit_code == 0 and "error: bad phone number '12'" in dead.output

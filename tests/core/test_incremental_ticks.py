"""Incremental ticks: a tick reads only deals whose time conditions became due, fires once, catches up.

Also: new versions re-arm timers, deals changed outside an evaluation are looked at by the next
tick, closed deals are never due, an upgraded database evaluates every open deal once, and the
benchmark command prints every figure (no timing assertions).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from benchmarks import bench
from engine.clock import VirtualClock
from engine.core import timers
from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import dispatch_internal
from storage import repositories as repo
from storage.db import make_engine
from storage.migrate import alembic_config
from tests.support.sessions import db_session

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EPSILON_US = timedelta(microseconds=3600)  # business-rules' 1e-6 hours


def _firings(c: Conveyor, rule_id: str) -> list:
    with db_session(c) as s:
        return [f for f in repo.list_firings(s) if f.rule_id == rule_id]


def _next_due(c: Conveyor, deal_id: int) -> datetime | None:
    with db_session(c) as s:
        return repo.get_deal(s, deal_id).next_due_at


@pytest.fixture
def any_conveyor(backend: str, clock: VirtualClock):
    c = Conveyor(backend, clock=clock)
    c.load_rules_dir(ROOT / "sample_rules")
    c.add_manager("Olena", "+380501110001")
    yield c
    c.close()


def test_a_time_rule_fires_at_the_first_tick_after_it_is_due_and_ticks_read_only_due_deals(
    any_conveyor: Conveyor, clock: VirtualClock
) -> None:
    c = any_conveyor
    ids = [c.create_deal("techflow", title=f"Lead {i}") for i in range(5)]
    assert _next_due(c, ids[1]) == START + timedelta(hours=24) - EPSILON_US
    clock.advance(timedelta(hours=1))
    c.record_activity(ids[0])  # the idle reminder of this lead now counts from 10:00
    assert c.tick().deals_examined == 0

    clock.set(START + timedelta(hours=24))
    report = c.tick()
    assert (report.deals_examined, report.rules_fired) == (4, 4)
    assert c.tick().deals_examined == 0  # fired: nothing left to wait for
    assert _next_due(c, ids[1]) is None

    clock.set(START + timedelta(hours=25))
    report = c.tick()
    assert (report.deals_examined, report.rules_fired) == (1, 1)
    assert sorted(f.deal_id for f in _firings(c, "incoming_idle_24h")) == sorted(ids)


def test_after_downtime_one_tick_catches_up_and_a_rule_never_fires_twice(
    conveyor: Conveyor, clock: VirtualClock
) -> None:
    deal = conveyor.create_deal("techflow", title="Forgotten lead")
    clock.advance(timedelta(days=10))
    assert conveyor.tick().rules_fired == 1
    clock.advance(timedelta(days=1))
    assert conveyor.tick().rules_fired == 0
    (firing,) = _firings(conveyor, "incoming_idle_24h")
    assert firing.deal_id == deal and firing.due_at == START + timedelta(hours=24)
    assert firing.fired_at == START + timedelta(days=10)


def test_activating_a_new_version_rearms_the_timers_of_open_deals(
    conveyor: Conveyor, clock: VirtualClock
) -> None:
    deal = conveyor.create_deal("techflow", title="Lead")
    clock.advance(timedelta(hours=13))
    assert conveyor.tick().deals_examined == 0  # due at 24 h under version 1
    doc = conveyor.ruleset("techflow").to_document()
    rule = next(r for r in doc["rules"] if r["id"] == "incoming_idle_24h")
    rule["conditions"]["all"][1]["value"] = 12
    conveyor.save_ruleset(doc, comment="remind after 12 hours")
    report = conveyor.tick()
    assert (report.deals_examined, report.rules_fired) == (1, 1)
    # Rolling back re-arms again; the occurrence already fired, so nothing fires twice.
    conveyor.activate("techflow", 1)
    report = conveyor.tick()
    assert (report.deals_examined, report.rules_fired) == (1, 0)
    assert _next_due(conveyor, deal) is None


def test_a_deal_changed_outside_an_evaluation_is_looked_at_by_the_next_tick(
    conveyor: Conveyor,
) -> None:
    deal = conveyor.create_deal("techflow", title="Lead")
    dispatch_internal(conveyor)  # assign_manager sets the manager without evaluating the deal
    assert conveyor.deal(deal).manager_id is not None
    assert _next_due(conveyor, deal) == timers.DUE_AT_ONCE
    assert conveyor.tick().deals_examined == 1
    assert _next_due(conveyor, deal) == START + timedelta(hours=24) - EPSILON_US


def test_closed_deals_are_never_due(conveyor: Conveyor, clock: VirtualClock) -> None:
    deal = conveyor.create_deal("techflow", title="Lead")
    conveyor.move_deal(deal, "cold_call")
    assert _next_due(conveyor, deal) is None
    clock.advance(timedelta(days=100))
    assert conveyor.tick().deals_examined == 0


def test_upgrading_a_database_from_revision_0001_evaluates_every_open_deal_once(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    doc = (ROOT / "sample_rules" / "techflow.json").read_text(encoding="utf-8")
    created = "2026-03-01 09:00:00.000000"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO funnels (id, name, active_version_id, created_at) "
                "VALUES ('techflow', 'TechFlow', 1, :t)"
            ),
            {"t": created},
        )
        conn.execute(
            sa.text(
                "INSERT INTO ruleset_versions (id, funnel_id, version, document, fingerprint, comment,"
                " author, created_at) VALUES (1, 'techflow', 1, :d, 'x', '', '', :t)"
            ),
            {"d": doc, "t": created},
        )
        for i, (stage, closed) in enumerate([("incoming", 0), ("cold_call", 1)], 1):
            conn.execute(
                sa.text(
                    "INSERT INTO deals (id, key, funnel_id, title, phone, email, stage, closed, stage_visit,"
                    " stage_entered_at, activity_seq, fields, created_at, updated_at) VALUES"
                    " (:i, :k, 'techflow', '', '', '', :s, :c, 1, :t, 0, '{}', :t, :t)"
                ),
                {"i": i, "k": f"OLD-{i}", "s": stage, "c": closed, "t": created},
            )
    engine.dispose()
    c = Conveyor(url, clock=VirtualClock(START))
    try:
        assert _next_due(c, 1) == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        assert _next_due(c, 2) is None
        report = c.tick()
        assert report.deals_examined == 1
        assert (
            report.rules_fired == 2
        )  # the old lead: assign_new_lead, and idle since yesterday 09:00
        assert c.tick().deals_examined == 0
    finally:
        c.close()


def test_bench_command_prints_every_figure_as_json() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "bench",
            "--deals",
            "2000",
            "--changes",
            "40",
            "--load-seconds",
            "0",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(bench.KEYS) <= set(figures)
    assert figures["deals"] == figures["tick_open_deals"] == 2000
    assert figures["tick_due_deals"] == figures["tick_fired"] == 2
    assert all(isinstance(figures[k], int | float) and figures[k] > 0 for k in bench.KEYS)
    assert figures["change_p50_ms"] <= figures["change_p95_ms"] <= figures["change_p99_ms"]
    # statements and CPU per change on PostgreSQL (issue 14, item 6), or why they were not measured
    assert "pg_error" in figures or figures["pg_statements_per_change"] > 0, figures.get("pg_error")
    # the Designer's render time (issue 3) is part of the benchmark output, measured, not asserted
    assert "designer_error" not in figures
    assert figures["designer_stages"] == 30 and figures["designer_rules"] == 300
    assert figures["designer_render_s"] > 0

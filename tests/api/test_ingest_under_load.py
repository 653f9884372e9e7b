"""The HTTP ingest benchmark's load generator, in a small run: ``conveyor api`` (uvicorn) in its own
process, keep-alive clients in another, and every event the API acknowledged is in the database
exactly once (what the benchmark's rate counts is real work, nothing lost, nothing doubled)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest

from benchmarks import wrk
from benchmarks.api import load_process, serve


def _stored(db: str) -> Counter[str]:
    """How many times each seq is in the database's recorded events."""
    with sqlite3.connect(db) as conn:
        return Counter(
            json.loads(data).get("seq")
            for (data,) in conn.execute(
                "SELECT data FROM deal_signals WHERE name = 'client_replied'"
            )
        )


@pytest.mark.parametrize("mode", ["events", "hooks"])
def test_every_acknowledged_event_is_in_the_database_exactly_once(tmp_path, mode: str) -> None:
    with serve(str(tmp_path), deals=20) as target:
        figures = load_process(target, mode, 4, 1.0)
        db = target.db.removeprefix("sqlite:///")
        stored = _stored(db)
        with sqlite3.connect(db) as conn:
            accepted = conn.execute(
                "SELECT count(*) FROM hook_calls WHERE outcome = 'accepted'"
            ).fetchone()[0]
    acked = figures["acked"]
    assert len(acked) == len(set(acked)) >= 4  # at least one per client (the warm-up)
    assert figures["requests"] == len(acked) - figures["warm_up"]
    missing = [seq for seq in acked if stored[seq] == 0]
    doubled = {seq: n for seq, n in stored.items() if n > 1}
    assert not missing and not doubled
    # the server stopped after the generator: nothing outside what was sent, nothing in flight
    assert set(stored) == set(acked)
    if mode == "hooks":
        assert accepted == len(acked)  # one log line per accepted call, committed with its event


@pytest.mark.skipif(
    not wrk.available(), reason="Debian's wrk is not installed (make bench installs it)"
)
@pytest.mark.parametrize("mode", ["events", "hooks"])
def test_wrk_load_counts_only_events_the_database_holds_once(tmp_path, mode: str) -> None:
    """wrk cannot list what it was answered; what it counts is checked against the database: every
    counted answer is a stored event, none stored twice, at most one per connection in flight."""
    with serve(str(tmp_path), deals=20) as target:
        figures = load_process(target, mode, 4, 1.0, "wrk")
        db = target.db.removeprefix("sqlite:///")
        stored = _stored(db)
    assert figures["generator"] == "wrk" and figures["wrapped"] == 0
    assert figures["requests"] >= 4 and figures["p99_ms"] >= figures["p50_ms"] > 0
    assert not {seq: n for seq, n in stored.items() if n > 1}
    assert figures["requests"] <= sum(stored.values()) <= figures["requests"] + 4

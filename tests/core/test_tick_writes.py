"""What a tick writes: the due instants that changed (one statement a batch), no index a unique key
already leads with, and about two pages per due deal (read from the write-ahead log, not timed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from benchmarks import bench
from benchmarks.ticks import tick_pages
from engine.clock import VirtualClock
from engine.core import timers
from engine.core.conveyor import Conveyor
from storage import repositories as repo
from tests.support.sessions import db_session

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def any_conveyor(backend: str, clock: VirtualClock):
    c = Conveyor(backend, clock=clock)
    c.load_rules_dir(ROOT / "sample_rules")
    yield c
    c.close()


def test_firings_and_outbox_have_no_index_their_unique_key_already_leads_with(
    any_conveyor: Conveyor,
) -> None:
    inspector = sa.inspect(any_conveyor.engine)
    for table, column, unique in (
        ("firings", "deal_id", ["deal_id", "rule_id", "occurrence"]),
        ("outbox", "firing_id", ["firing_id", "seq"]),
    ):
        assert [column] not in [ix["column_names"] for ix in inspector.get_indexes(table)]
        assert unique in [u["column_names"] for u in inspector.get_unique_constraints(table)]


def test_only_due_instants_that_changed_are_written_and_other_changes_are_left_to_the_flush(
    any_conveyor: Conveyor,
) -> None:
    c = any_conveyor
    same, moved, renamed = (c.create_deal("techflow", title=f"Lead {i}") for i in range(3))
    later = START + timedelta(days=3)
    with db_session(c) as s, s.no_autoflush:  # as in a tick: the batch is written at its end
        deals = repo.deals_by_ids(s, [same, moved, renamed])
        by_id = {d.id: d for d in deals}
        by_id[same].next_due_at = by_id[same].next_due_at  # decided again, unchanged
        by_id[moved].next_due_at = later
        by_id[renamed].next_due_at = later
        by_id[renamed].title = "Renamed"  # a change of its own: the flush writes the whole row
        assert timers.store_due(s, deals) == 1
        assert not s.is_modified(by_id[same]) and not s.is_modified(by_id[moved])
        assert s.is_modified(by_id[renamed])
        s.flush()
    with db_session(c) as s:
        stored = {d.id: d for d in repo.deals_by_ids(s, [same, moved, renamed])}
        assert stored[moved].next_due_at == later
        assert (stored[renamed].title, stored[renamed].next_due_at) == ("Renamed", later)
        assert stored[same].next_due_at == START + timedelta(hours=24) - timedelta(
            microseconds=3600
        )


def test_a_tick_writes_about_two_pages_per_due_deal_and_none_to_a_redundant_index(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ticks.db"
    c = Conveyor(f"sqlite:///{path}", clock=VirtualClock(bench.NOW - timedelta(days=30)))
    try:
        c.load_rules_dir(ROOT / "sample_rules")
        manager = c.add_manager("Bench manager", "+380500000001")
        version = next(v.id for v in c.versions("techflow") if v.active)
        bench.populate(str(path), 20_000, 200, manager, version)
        c.clock.set(bench.NOW)
        out = tick_pages(c, path)
    finally:
        c.close()
    assert (out["report"].deals_examined, out["report"].rules_fired) == (200, 200)
    by_object = out["tick_pages_by_object"]
    assert sum(by_object.values()) == out["tick_pages_distinct"] <= out["tick_pages_written"]
    # One page of the deal row and one of the firing's unique key per due deal, the appended
    # firings, outbox rows and their indexes a few pages for the whole batch.
    assert by_object["deals"] <= 200
    assert out["tick_pages_written"] <= 2.5 * 200
    assert not any(name in by_object for name in ("ix_firings_deal_id", "ix_outbox_firing_id"))

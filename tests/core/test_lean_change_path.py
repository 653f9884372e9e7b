"""The change path reads and writes little (issue 14, items 1 and 6) and never uses a stale rule set.

A change is a handful of statements: the deal read with its funnel's active version and its fired
occurrences, one UPDATE of the deal, its history line and its audit entry (a firing adds its row and
its outbox rows). The parsed rule set is cached per version in each process; a version activated by
another Conveyor (another engine) on the same database is used by the very next change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from storage.models import Firing
from tests.conftest import SAMPLE_RULES
from tests.support.sessions import db_session


@contextmanager
def _statements(c: Conveyor, *, whole: bool = False) -> Iterator[list[str]]:
    """The statements sent to the driver meanwhile: their first three words, or ``whole``."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement if whole else " ".join(statement.split()[:3]))

    event.listen(c.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(c.engine, "before_cursor_execute", count)


def _qualifying_deal(c: Conveyor) -> int:
    return c.create_deal(
        "techflow",
        title="Lean",
        stage="qualification",
        fields={"budget": "yes", "authority": "yes"},
    )


def _firings(c: Conveyor, deal_id: int, rule: str) -> list[tuple[str, int]]:
    with db_session(c) as s:
        return [
            (f.occurrence, f.ruleset_version_id)
            for f in s.scalars(
                select(Firing).where(Firing.deal_id == deal_id, Firing.rule_id == rule)
            )
        ]


def test_a_change_is_five_statements_with_one_update_of_the_deal(
    backend: str, conveyor: Conveyor
) -> None:
    deal = _qualifying_deal(conveyor)
    conveyor.record_activity(deal, "call", "warm-up")  # statement caches, the rule set compiled
    with _statements(conveyor, whole=True) as whole:
        conveyor.record_activity(deal, "call", "nothing fires")
    seen = [" ".join(s.split()[:3]) for s in whole]
    if backend.startswith("postgresql"):
        # Its BEGIN is the driver's; SELECT … FOR UPDATE, then the version and the fired occurrences
        # (read after the lock), then history, audit and the deal's UPDATE as one statement: two
        # data-modifying CTEs of the UPDATE.
        assert [s.split()[0] for s in seen] == ["SELECT", "SELECT", "WITH"], seen
        assert whole[0].rstrip().endswith("FOR UPDATE"), whole[0]
        folded = " ".join(whole[2].split())
        assert "INSERT INTO deal_events" in folded and "INSERT INTO audit_log" in folded, folded
        assert " UPDATE deals SET " in folded, folded
    else:
        # BEGIN IMMEDIATE, SELECT (deal + version + fired), INSERT history, INSERT audit, UPDATE deal.
        assert len(seen) == 5, seen
        assert sum(s.startswith("UPDATE deals") for s in seen) == 1, seen
    assert not any(s.startswith(("SELECT funnels", "SELECT ruleset_versions")) for s in seen), seen


def test_a_change_that_fires_adds_only_its_firing_and_outbox_rows(
    backend: str, conveyor: Conveyor
) -> None:
    deal = _qualifying_deal(conveyor)
    conveyor.record_activity(deal, "call", "warm-up")
    with _statements(conveyor) as seen:
        conveyor.update_deal(deal, {"need": "no"})  # qualification_no fires
    assert len(seen) == (5 if backend.startswith("postgresql") else 7), seen
    assert sum(s.startswith("INSERT INTO firings") for s in seen) == 1, seen
    assert sum(s.startswith("INSERT INTO outbox") for s in seen) == 1, seen
    conveyor.update_deal(deal, {"title": "Again"})  # the fired occurrence, read with the deal
    assert len(_firings(conveyor, deal, "qualification_no")) == 1


def _without_qualification_no() -> dict[str, object]:
    doc = json.loads((SAMPLE_RULES / "techflow.json").read_text())
    doc["rules"] = [r for r in doc["rules"] if r["id"] != "qualification_no"]
    return doc


@pytest.fixture
def other_engine(backend: str, conveyor: Conveyor) -> Iterator[Conveyor]:
    """A second Conveyor on the same database: another engine process, as far as caches go."""
    c = Conveyor(backend, clock=conveyor.clock)
    yield c
    c.close()


def test_a_version_activated_by_another_engine_is_used_by_the_next_change(
    conveyor: Conveyor, other_engine: Conveyor
) -> None:
    first = _qualifying_deal(conveyor)
    conveyor.record_activity(first, "call", "caches version 1 here")
    v1 = next(v for v in conveyor.versions("techflow") if v.active)

    v2 = other_engine.save_ruleset(_without_qualification_no(), comment="no qualification_no")
    conveyor.update_deal(first, {"need": "no"})
    assert _firings(conveyor, first, "qualification_no") == []  # version 2 has no such rule

    other_engine.activate("techflow", v1.version)  # a rollback, made elsewhere as well
    second = _qualifying_deal(conveyor)
    conveyor.update_deal(second, {"need": "no"})
    assert [vid for _occ, vid in _firings(conveyor, second, "qualification_no")] == [v1.id]
    assert v2.id != v1.id


@pytest.mark.postgres
def test_a_version_activated_while_the_change_waits_for_the_deal_lock_is_used(
    pg_url: str, clock: VirtualClock
) -> None:
    """PostgreSQL, READ COMMITTED: the change's ``SELECT … FOR UPDATE`` waits for a transaction that
    holds the deal's row and activates another version; once it commits, the change must decide under
    that version (its version id is read by a statement that starts after the lock is granted)."""
    import threading
    import time

    import sqlalchemy as sa

    c = Conveyor(pg_url, clock=clock)
    try:
        c.load_rules_dir(SAMPLE_RULES)
        deal = _qualifying_deal(c)
        c.record_activity(deal, "call", "caches version 1")
        v2 = c.save_ruleset(
            _without_qualification_no(), comment="no qualification_no", activate=False
        )
        eng = sa.create_engine(pg_url)
        raised: list[BaseException] = []
        try:
            with eng.connect() as conn:
                tx = conn.begin()
                conn.exec_driver_sql(f"UPDATE deals SET next_due_at = NULL WHERE id = {deal}")
                conn.exec_driver_sql(
                    f"UPDATE funnels SET active_version_id = {v2.id} WHERE id = 'techflow'"
                )

                def change() -> None:
                    try:
                        c.update_deal(deal, {"need": "no"})  # version 1 would fire qualification_no
                    except BaseException as exc:  # noqa: BLE001 - handed to the test
                        raised.append(exc)

                worker = threading.Thread(target=change)
                worker.start()
                deadline = time.monotonic() + 30
                while worker.is_alive() and time.monotonic() < deadline:
                    with eng.connect() as probe:
                        waiting = probe.exec_driver_sql(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()"
                        ).scalar()
                    if waiting:
                        break
                    time.sleep(0.02)
                assert waiting, "the change never waited for the deal's lock"
                tx.commit()
                worker.join(60)
        finally:
            eng.dispose()
        assert not raised, raised
        assert _firings(c, deal, "qualification_no") == []  # decided under version 2
    finally:
        c.close()

"""Races between two sessions end in "try again", not a traceback: two saves of one funnel, two first saves
of a new funnel, two managers of one name. PostgreSQL only: SQLite serialises writers, so there is no race.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from engine.core.conveyor import Conveyor
from engine.errors import ConveyorError, InvalidChange
from tests.conftest import SAMPLE_RULES
from tests.support.funnels import funnel, rule

pytestmark = pytest.mark.postgres

CHAIN_C = funnel(
    "chain_c",
    [rule("note", "start", [{"name": "notify_manager", "params": {"text": "{title} started"}}])],
)


def _race(pg_url: str, competing_sql: str, call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` while another transaction holds an uncommitted ``competing_sql``; commit it once
    ``call`` waits on its lock, so ``call``'s own insert collides. Returns what ``call`` raised."""
    eng = sa.create_engine(pg_url)
    raised: list[BaseException | None] = []
    try:
        with eng.connect() as conn:
            tx = conn.begin()
            conn.exec_driver_sql(competing_sql)

            def run() -> None:
                try:
                    call()
                    raised.append(None)
                except BaseException as exc:  # noqa: BLE001 - handed to the test
                    raised.append(exc)

            worker = threading.Thread(target=run)
            worker.start()
            deadline = time.monotonic() + 30
            while not _waiting_on_lock(eng) and worker.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            tx.commit()
            worker.join(60)
    finally:
        eng.dispose()
    return raised[0] if raised else None


def _waiting_on_lock(eng: sa.Engine) -> bool:
    with eng.connect() as conn:
        return bool(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).scalar()
        )


@pytest.fixture
def pg_conveyor(pg_url: str, clock: Any) -> Iterator[Conveyor]:
    c = Conveyor(pg_url, clock=clock)
    c.load_rules_dir(SAMPLE_RULES)
    yield c
    c.close()


def test_concurrent_saves_of_one_funnel_end_in_try_again(pg_conveyor, pg_url):
    doc = pg_conveyor.rulesets.export("techflow")
    exc = _race(
        pg_url,
        "INSERT INTO ruleset_versions (funnel_id, version, document, fingerprint, comment, author,"
        " created_at) SELECT funnel_id, 2, document, fingerprint, 'other', 'other', created_at"
        " FROM ruleset_versions WHERE funnel_id = 'techflow'",
        lambda: pg_conveyor.save_ruleset(doc, comment="mine"),
    )
    assert isinstance(exc, ConveyorError) and not isinstance(exc, sa.exc.DBAPIError)
    assert "someone saved a version of funnel 'techflow' at the same time" in str(
        exc
    ) and "try again" in str(exc)
    assert [v.comment for v in pg_conveyor.versions("techflow")][0] == "other"


def test_concurrent_first_saves_of_a_new_funnel_end_in_try_again(pg_conveyor, pg_url):
    exc = _race(
        pg_url,
        "INSERT INTO funnels (id, name, created_at) VALUES ('chain_c', 'Other', now())",
        lambda: pg_conveyor.save_ruleset(CHAIN_C),
    )
    assert (
        isinstance(exc, ConveyorError)
        and "at the same time" in str(exc)
        and "try again" in str(exc)
    )


def test_concurrent_managers_of_one_name_end_in_try_again(pg_conveyor, pg_url):
    exc = _race(
        pg_url,
        "INSERT INTO managers (name, phone, active, assign_seq) VALUES ('Ivan', '', true, 0)",
        lambda: pg_conveyor.add_manager("Ivan"),
    )
    assert isinstance(exc, InvalidChange)
    assert (
        "a manager named 'Ivan' was added by someone else at the same time; refresh and try again"
        in str(exc)
    )
    assert [m for m in pg_conveyor.funnels()]  # the conveyor still works after the collision
    assert pg_conveyor.add_manager("Ivanna") > 0

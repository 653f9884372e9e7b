"""Several ``conveyor engine`` processes on one real PostgreSQL, started together over a few thousand
deals with due timers and pending actions: no (rule, deal, occurrence) fires twice, no action runs
twice (tasks, invoices, messages at the gateway), and none is missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.core.conveyor import Conveyor
from storage.models import EngineHeartbeat, Firing
from tests.conftest import pg_admin_url, require_postgres
from tests.support.engine_world import (
    World,
    assert_exactly_once,
    outcome,
    seed,
    settled,
    start_engine,
    stop,
    wait_for,
)
from tests.support.sessions import db_session
from tests.support.webhook import Gateway

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# 2,000 open deals: 300 new leads (assignment and call task pending, 24 h reminder due), 100 in
# contract (invoice and SMS pending; 5 with a bad phone number) and 1,600 with nothing due that the
# ticks still examine — about 1,100 actions for the engines to share.
INCOMING, CONTRACT, BAD_PHONE, QUIET = 300, 95, 5, 1600


def _admin() -> sa.Engine:
    return sa.create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="module")
def seeded_template() -> Iterator[tuple[str, World]]:
    """Seed once (it is the slow part), then each test starts from a copy of that database."""
    admin_url = require_postgres()
    name = f"conveyor_tmpl_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        world = seed(
            url, incoming=INCOMING, contract=CONTRACT, bad_phone=BAD_PHONE, quiet=QUIET, threads=6
        )
        yield name, world
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _copy_into(pg_url: str, template: str) -> None:
    name = sa.engine.make_url(pg_url).database
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()


@pytest.mark.parametrize("engines", [2, 4], ids=["two-engines", "four-engines"])
def test_engines_started_together_on_postgresql_do_everything_exactly_once(
    pg_url, seeded_template, tmp_path: Path, engines: int
):
    template, world = seeded_template
    _copy_into(pg_url, template)
    logs = [tmp_path / f"engine{i}.log" for i in range(engines)]
    with Gateway("ok") as gw:
        procs = [start_engine(pg_url, log, provider=gw.url, lease=60, workers=3) for log in logs]
        c = Conveyor(pg_url)
        try:
            wait_for(
                lambda: settled(c, world),
                300,
                f"{engines} engines to finish the work",
                procs,
                logs,
                every=1,
            )
        finally:
            codes = [stop(p) for p in procs]
        keys = gw.keys()
    try:
        assert codes == [0] * engines, "\n".join(x.read_text()[-2000:] for x in logs)
        o = assert_exactly_once(c, world)
        sent = {k for k, status in o.message_keys.items() if status == "done"}
        assert len(sent) == CONTRACT
        # each message reached the gateway exactly once: no two engines sent the same action
        assert keys == {k: 1 for k in sent}
        with db_session(c) as s:
            # every engine took part (ticked) and said goodbye; the work really was shared
            beats = s.scalars(sa.select(EngineHeartbeat)).all()
            fired_by_tick = s.scalar(
                sa.select(sa.func.count()).select_from(Firing).where(Firing.trigger == "tick")
            )
        assert len(beats) == engines and all(
            b.stopped_at is not None and b.last_tick_at for b in beats
        )
        assert (
            fired_by_tick == INCOMING
        )  # the due 24 h reminders, each once although every engine ticked
        assert outcome(c).statuses["done"] == sum(o.statuses.values()) - BAD_PHONE
    finally:
        c.close()

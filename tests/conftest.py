"""Shared fixtures: a virtual clock, Conveyor on a real SQLite file, and real PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RULES = ROOT / "sample_rules"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conveyor.db'}"


@pytest.fixture
def conveyor(db_url: str, clock: VirtualClock) -> Iterator[Conveyor]:
    """Conveyor on a fresh SQLite file with the sample funnels and two managers."""
    c = Conveyor(db_url, clock=clock)
    c.load_rules_dir(SAMPLE_RULES)
    c.add_manager("Olena", "+380501110001")
    c.add_manager("Petro", "+380501110002")
    yield c
    c.close()


def _pg_admin_url() -> str:
    return os.environ.get("CONVEYOR_TEST_PG", PG_DEFAULT)


def _pg_reachable(url: str) -> str | None:
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(url)
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


def require_postgres() -> str:
    """The admin URL of a PostgreSQL server that answers; skip outside CI, fail in CI, if none does."""
    admin = _pg_admin_url()
    problem = _pg_reachable(admin)
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL at {admin} is required in CI: {problem}")
        pytest.skip(f"no PostgreSQL at {admin}: {problem}")
    return admin


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards).

    Skips only outside CI when no server answers; with CI=true an unreachable server fails the test.
    """
    import sqlalchemy as sa

    admin = require_postgres()
    name = f"conveyor_t_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with eng.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database built once per module; each test works on its own copy (loading takes a second)."""
    from engine.cli.demo_data import load_demo

    path = tmp_path_factory.mktemp("demo") / "template.db"
    c = Conveyor(f"sqlite:///{path}")
    load_demo(c)
    c.close()  # the last connection checkpoints the WAL, so the file alone is the whole database
    return path


@pytest.fixture
def demo_db(demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Conveyor]:
    """A fresh copy of the demo database for one test; the builder finds it through CONVEYOR_DB."""
    import shutil

    path = tmp_path / "builder.db"
    shutil.copyfile(demo_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("CONVEYOR_DB", url)
    c = Conveyor(url)
    yield c
    c.close()

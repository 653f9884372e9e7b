"""Shared fixtures: a virtual clock, the ``backend`` every behaviour test runs on, and real databases.

``backend`` is parametrised over SQLite (a file in the test's folder) and PostgreSQL (a database cloned
from a migrated template made once per session); ``conveyor`` is Conveyor on it. Tests that are about
one database by nature (one engine per SQLite file, several engines on PostgreSQL) take ``db_url``,
``sqlite_conveyor`` or ``pg_url`` instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RULES = ROOT / "sample_rules"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# The suite reads the interface in English whatever the shell's CONVEYOR_LANG says (it reaches the
# subprocesses too); a test of another language switches to it explicitly.
os.environ["CONVEYOR_LANG"] = "en"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conveyor.db'}"


def _sample_conveyor(url: str, clock: VirtualClock) -> Conveyor:
    c = Conveyor(url, clock=clock)
    c.load_rules_dir(SAMPLE_RULES)
    c.add_manager("Olena", "+380501110001")
    c.add_manager("Petro", "+380501110002")
    return c


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgresql"],
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The database URL of one test: a fresh SQLite file, or a fresh PostgreSQL database (migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'conveyor.db'}"
    else:
        yield from request.getfixturevalue("_pg_template").clone()


@pytest.fixture
def fresh_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], str]]:
    """Another empty database on the test's backend per call, for a test that needs several (a scenario
    run each, say); PostgreSQL clones are dropped after the test."""
    with ExitStack() as stack:
        count = iter(range(1, 1_000_000))

        def new() -> str:
            if backend.startswith("sqlite"):
                return f"sqlite:///{tmp_path / f'fresh-{next(count)}.db'}"
            clones = request.getfixturevalue("_pg_template").clone()
            stack.callback(clones.close)
            return next(clones)

        yield new


@pytest.fixture
def conveyor(backend: str, clock: VirtualClock) -> Iterator[Conveyor]:
    """Conveyor on the test's ``backend`` with the sample funnels and two managers."""
    c = _sample_conveyor(backend, clock)
    yield c
    c.close()


@pytest.fixture
def sqlite_conveyor(db_url: str, clock: VirtualClock) -> Iterator[Conveyor]:
    """Conveyor on ``db_url``, a SQLite file, for tests about SQLite itself (its file, its write lock)."""
    c = _sample_conveyor(db_url, clock)
    yield c
    c.close()


def pg_admin_url() -> str:
    """The PostgreSQL server the tests use (``CONVEYOR_TEST_PG``), whether or not it answers."""
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
    admin = pg_admin_url()
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


class _PgTemplate:
    """A PostgreSQL database migrated once; each test gets a clone (``CREATE DATABASE ... TEMPLATE``).

    Cloning takes a quarter of the time of creating an empty database and running the migrations in it,
    and every test still has a database of its own, triggers and sequences included.
    """

    def __init__(self, admin: str) -> None:
        import sqlalchemy as sa

        self.admin = admin
        self.engine = sa.create_engine(
            admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        self.name: str | None = None

    def _url(self, name: str) -> str:
        import sqlalchemy as sa

        return (
            sa.engine.make_url(self.admin).set(database=name).render_as_string(hide_password=False)
        )

    def _run(self, sql: str) -> None:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            conn.execute(sa.text(sql))

    def clone(self) -> Iterator[str]:
        if self.name is None:
            self.name = f"conveyor_tmpl_{uuid.uuid4().hex[:10]}"
            self._run(f'CREATE DATABASE "{self.name}"')
            Conveyor(
                self._url(self.name)
            ).close()  # migrated to head; no connection stays on the template
        name = f"conveyor_t_{uuid.uuid4().hex[:10]}"
        self._run(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"')
        try:
            yield self._url(name)
        finally:
            self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.name is not None:
            self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.engine.dispose()


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[_PgTemplate]:
    template = _PgTemplate(require_postgres())
    yield template
    template.close()


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
def demo_db(
    demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Conveyor]:
    """A fresh copy of the demo database for one test; the builder finds it through CONVEYOR_DB."""
    import shutil

    path = tmp_path / "builder.db"
    shutil.copyfile(demo_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("CONVEYOR_DB", url)
    c = Conveyor(url)
    yield c
    c.close()


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """argon2 at its real cost takes a second per hash on a loaded test machine; in this process the
    tests hash with tiny parameters (the same code, verify included). Subprocesses hash for real."""
    from argon2 import PasswordHasher

    from engine.core import users

    real = users.HASHER
    users.HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    users.HASHER = real

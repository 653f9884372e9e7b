"""Deals and outbox rows are indexed by manager only where they have one (migration 0013): an imported
lead (no manager until ``assign_manager``) and a rule's outbox rows add no entry, while every query
by manager still reads the index; and the migration goes down and up again, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.core.conveyor import Conveyor
from storage import repositories as repo
from storage.db import make_engine
from storage.deliveries import messages_to_manager
from storage.migrate import alembic_config
from storage.models import Base
from tests.support.sessions import db_session

INDEXES = {("deals", "ix_deals_manager_id"), ("outbox", "ix_outbox_manager_id")}


def _where(engine: sa.Engine) -> dict[tuple[str, str], str | None]:
    inspector = sa.inspect(engine)
    out: dict[tuple[str, str], str | None] = {}
    for table, name in INDEXES:
        (ix,) = [i for i in inspector.get_indexes(table) if i["name"] == name]
        assert ix["column_names"] == ["manager_id"]
        where = ix.get("dialect_options", {}).get(f"{engine.dialect.name}_where")
        out[(table, name)] = (
            None if where is None else " ".join(str(where).split()).lower().strip("()")
        )
    return out


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = make_engine(url)
    try:
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)
    finally:
        engine.dispose()


def test_the_manager_indexes_hold_only_rows_that_have_a_manager_and_the_migration_goes_both_ways(
    conveyor: Conveyor,
) -> None:
    engine = conveyor.engine
    assert set(_where(engine).values()) == {"manager_id is not null"}
    with engine.connect() as conn:
        assert not compare_metadata(MigrationContext.configure(conn), Base.metadata)
    url = engine.url.render_as_string(hide_password=False)
    conveyor.close()
    _migrate(url, "0012", down=True)
    plain = make_engine(url)
    try:
        assert set(_where(plain).values()) == {None}
    finally:
        plain.dispose()
    _migrate(url, "head")
    again = make_engine(url)
    try:
        assert set(_where(again).values()) == {"manager_id is not null"}
    finally:
        again.dispose()


def test_an_imported_lead_and_its_rules_outbox_rows_add_no_manager_entry_and_queries_use_the_index(
    sqlite_conveyor: Conveyor,
) -> None:
    c = sqlite_conveyor
    report = c.imports.import_items("techflow", [{"key": f"N-{i}"} for i in range(20)])
    assert report.imported == 20 and report.fired
    olena = next(m for m in c.deals.managers() if m.name == "Olena")
    c.create_deal("techflow", key="OWN-1", title="Hers", manager="Olena")
    with c.engine.connect() as conn:
        entries = {
            name: conn.exec_driver_sql(
                f"SELECT count(*) FROM {table} INDEXED BY {name} WHERE manager_id IS NOT NULL"
            ).scalar_one()
            for table, name in INDEXES
        }
        with_manager = {
            table: conn.exec_driver_sql(
                f"SELECT count(*) FROM {table} WHERE manager_id IS NOT NULL"
            ).scalar_one()
            for table, _name in INDEXES
        }
        stored = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE name IN (?, ?)",
            tuple(n for _t, n in INDEXES),
        ).all()
        # The queries that read them, with their parameters bound as the repositories bind them.
        plans = [
            " ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, args))
            for sql, args in (
                ("SELECT id FROM deals WHERE manager_id = ? ORDER BY id", (olena.id,)),
                ("SELECT id FROM outbox WHERE manager_id = ?", (olena.id,)),
                (
                    "SELECT manager_id, count(*) FROM deals WHERE closed = 0"
                    " AND manager_id IS NOT NULL GROUP BY manager_id",
                    (),
                ),
            )
        ]
    assert {n: "WHERE manager_id IS NOT NULL" in (sql or "") for n, sql in stored} == {
        n: True for _t, n in INDEXES
    }
    assert entries == {name: with_manager[table] for table, name in INDEXES}
    assert with_manager["deals"] == 1  # the 20 imported leads wait for assign_manager
    assert all("ix_deals_manager_id" in p or "ix_outbox_manager_id" in p for p in plans), plans
    with db_session(c) as s:
        assert [d.key for d in repo.list_deals(s, manager_id=olena.id)] == ["OWN-1"]
        assert messages_to_manager(s, olena.id) == []

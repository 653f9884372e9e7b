"""Schema migrations: ``upgrade`` brings any database to the newest Alembic revision."""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from storage.db import READ_ONLY_OPTION
from storage.errors import StorageError

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # only a broken installation ships no migration
        raise StorageError(f"no schema migrations found in {MIGRATIONS}")
    return head


def current_revision(engine: Engine) -> str | None:
    # A read: on SQLite it must not take the write lock, or every start-up waits behind the engine.
    with engine.connect().execution_options(**{READ_ONLY_OPTION: True}) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied (safe to call on every start-up)."""
    if current_revision(engine) == head_revision():
        return
    cfg = alembic_config()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several engines started together on an empty database: one migrates, the others wait
            # here for it and then find nothing left to do (the lock ends with the transaction).
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7431005)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

"""Raw SQL on either backend, for tests that plant what the public API refuses (old rows, a refusing trigger)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa


def execute(url: str, sql: str) -> None:
    """Run ``sql`` (one or more statements) in its own committed transaction on ``url``."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def refuse_inserts(
    url: str, table: str, message: str, *, deal_id: int | None = None
) -> Callable[[], None]:
    """A trigger that makes the database refuse inserts into ``table`` (only ``deal_id``'s rows if given) with
    ``message``, as a database-side refusal (an over-long value, a lock) would; returns what removes it."""
    name = f"refuse_{table}"
    if url.startswith("sqlite"):
        when = f" WHEN NEW.deal_id = {deal_id}" if deal_id is not None else ""
        execute(
            url,
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table}{when} BEGIN SELECT RAISE(ABORT, '{message}'); END",
        )
        return lambda: execute(url, f"DROP TRIGGER {name}")
    condition = f"NEW.deal_id = {deal_id}" if deal_id is not None else "true"
    execute(
        url,
        f"""
        CREATE FUNCTION {name}() RETURNS trigger AS $$
        BEGIN
            IF {condition} THEN
                RAISE EXCEPTION '{message}';
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}();
    """,
    )
    return lambda: execute(url, f"DROP TRIGGER {name} ON {table}")


def rows(url: str, sql: str, **params: object) -> list[tuple]:
    """The rows ``sql`` (with ``:name`` parameters) reads on ``url``, as plain tuples."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params).all()]
    finally:
        engine.dispose()

"""Bulk writes of a deals import: ids taken up front, rows inserted with one executemany per table.

Taking the ids before inserting lets the caller write a keyless deal's ``D-<id>`` key, its history,
its firings and their outbox rows without reading anything back. On SQLite the caller holds the
write lock (``BEGIN IMMEDIATE``), so ``max(id) + 1`` onwards is free until it commits; on PostgreSQL
the ids come from the table's own sequence and are never handed out twice.

``insert_rows`` hands the driver one ``executemany`` of plain tuples: each column's SQLAlchemy bind
processing (aware UTC to the stored form, JSON to text, booleans) is applied as a Core insert would,
but once per distinct value of a column instead of once per row and column, which is most of the
cost of a Core executemany of 100,000 rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from storage.models import Base, Deal
from storage.repositories.common import dialect_name, table_of


def allocate_ids(session: Session, model: type[Base], count: int) -> list[int]:
    """``count`` ids of ``model``'s table that no row has or will be given by anyone else
    (inside a write transaction)."""
    if count <= 0:
        return []
    table = table_of(model)
    if dialect_name(session) == "postgresql":
        rows = session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": count},
        )
        return [int(r[0]) for r in rows]
    first = (session.scalar(select(func.max(table.c.id))) or 0) + 1
    return list(range(first, first + count))


def existing_keys(session: Session, keys: Sequence[str], page: int = 5000) -> set[str]:
    """Which of ``keys`` a deal already has."""
    found: set[str] = set()
    for start in range(0, len(keys), page):
        part = list(keys[start : start + page])
        found.update(session.scalars(select(Deal.key).where(Deal.key.in_(part))))
    return found


def insert_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``model``'s table in one executemany.

    Every column with a default must be given (nothing is filled in here).
    """
    if not rows:
        return
    table = table_of(model)
    names = list(rows[0])
    missing = [
        c.name
        for c in table.columns
        if c.name not in names
        and (c.default is not None or c.server_default is not None)
        and not c.primary_key
    ]
    if missing:
        raise ValueError(f"insert_rows into {table.name}: give {', '.join(missing)}")
    dialect = session.get_bind().dialect
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)})"
        f" VALUES ({', '.join([mark] * len(names))})"
    )
    # Rows to columns and back with C loops (itemgetter, zip): no Python step per row and column.
    pick = itemgetter(*names)
    given = list(map(pick, rows)) if len(names) > 1 else [(pick(r),) for r in rows]
    columns: list[Sequence[Any]] = []
    for name, values in zip(names, zip(*given, strict=True), strict=True):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        columns.append(values if process is None else _processed(list(values), process))
    session.connection().exec_driver_sql(sql, list(zip(*columns, strict=True)))


def _processed(values: list[Any], process: Callable[[Any], Any]) -> list[Any]:
    # Each distinct value once (equal values are stored alike: a column holds one type); a dict or
    # a list (JSON) once per object, so the caller shares one object between rows whose JSON is the
    # same (``values`` keeps every object alive, so an id stays that object's for the whole call).
    try:
        done = {v: process(v) for v in dict.fromkeys(values)}
        return list(map(done.__getitem__, values))
    except TypeError:  # unhashable: JSON objects and arrays
        ids = list(map(id, values))
        by_id = {i: process(v) for i, v in dict(zip(ids, values, strict=True)).items()}
        return list(map(by_id.__getitem__, ids))

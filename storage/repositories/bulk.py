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

import json
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

from storage.models import Base
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


def existing_keys(session: Session, keys: Sequence[str], page: int = 50_000) -> set[str]:
    """Which of ``keys`` a deal already has.

    Each page of keys is one bound value (a JSON array read by SQLite's ``json_each``, a PostgreSQL
    text array), not one parameter per key: SQLAlchemy expanding ``IN`` over thousands of
    parameters cost more than the query itself (~28 µs a key, twice per imported row).
    """
    found: set[str] = set()
    connection = session.connection()
    postgres = dialect_name(session) == "postgresql"
    sql = (
        "SELECT key FROM deals WHERE key = ANY(%s)"
        if postgres
        else "SELECT key FROM deals WHERE key IN (SELECT value FROM json_each(?))"
    )
    for start in range(0, len(keys), page):
        part = list(keys[start : start + page])
        given = part if postgres else json.dumps(part)
        found.update(k for (k,) in connection.exec_driver_sql(sql, (given,)))
    return found


#: A bulk write's SQLite page cache (KiB): the index pages a chunk of 5,000 deals touches stay in
#: memory instead of being read back and spilled (SQLite's default is 2,000 KiB).
BULK_CACHE_KIB = 65_536
#: A bulk write's connection writes the WAL back into the database when it passes this many pages
#: (~100 MB) instead of SQLite's 1,000 (at nearly every chunk's commit, each time copying again the
#: index pages every chunk touches); ``write_back`` runs once when the bulk write ends.
BULK_CHECKPOINT_PAGES = 25_000
_SAVED = "conveyor.bulk_settings"  # the connection's own settings, restored when it is checked in


def bulk_settings(session: Session) -> None:
    """On SQLite, give the session's connection the bulk-write settings above until it goes back to
    the pool (then its own are restored: other units on that connection later checkpoint as usual).
    Durability is untouched: each commit still fsyncs the WAL (synchronous=FULL)."""
    if dialect_name(session) != "sqlite":
        return
    connection = session.connection()
    record = connection.connection
    if _SAVED not in record.info:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            saved = (
                cursor.execute("PRAGMA cache_size").fetchone()[0],
                cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0],
            )
            cursor.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
            cursor.execute(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")
        finally:
            cursor.close()
        record.info[_SAVED] = saved
    pool = connection.engine.pool
    if not event.contains(pool, "checkin", _restore):
        event.listen(pool, "checkin", _restore)


def _restore(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    saved = record.info.pop(_SAVED, None)
    if saved is None or dbapi_connection is None:
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA cache_size={int(saved[0])}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(saved[1])}")
    finally:
        cursor.close()


def write_back(engine: Engine) -> None:
    """On SQLite, write the WAL back into the database file now (a passive checkpoint: it waits for
    no reader or writer), after a bulk write that held its checkpoints back."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        # Outside any transaction (the driver's connection is in autocommit: storage.db).
        raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
    finally:
        raw.close()


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

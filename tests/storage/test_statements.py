"""The change path's statements on the driver's cursor store and read exactly what SQLAlchemy would.

``storage.statements`` runs compiled-once Core statements on the DB-API cursor with SQLAlchemy's own
bind and result processors. Here each hot statement writes the same values both ways and the rows
are compared as the database stores them (SQLite: ``quote()`` and ``typeof()`` of every column;
PostgreSQL: every column as text, JSON kept verbatim by the ``json`` type), on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from engine.core.conveyor import Conveyor
from storage import people_repositories as people
from storage import repositories as repo
from storage.models import Deal, DealEvent
from storage.people_models import AuditEntry
from storage.repositories.common import table_of
from storage.repositories.deals import DEAL_COLUMNS
from storage.statements import Statement
from tests.support.sessions import db_session

#: Values that exercise every processor: an aware instant off UTC with microseconds, text beyond
#: ASCII, JSON with nesting, floats, big integers, booleans and nulls.
AT = datetime(2026, 3, 2, 11, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
DATA = {"from": 1.5, "to": None, "ключ": ["a", {"b": True}], "n": 10**15, "s": 'Оксана ✓ "q"'}


def _stored(conn: Connection, table: str, row_id: int, columns: list[str]) -> list[Any]:
    """One row exactly as the database holds it, column by column."""
    if conn.dialect.name == "sqlite":
        exprs = ", ".join(f"quote({c}), typeof({c})" for c in columns)
    else:
        exprs = ", ".join(f"{c}::text, pg_typeof({c})::text" for c in columns)
    row = conn.execute(text(f"SELECT {exprs} FROM {table} WHERE id = :id"), {"id": row_id}).one()
    return list(row)


def _last_id(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT max(id) FROM {table}")).scalar_one())


@contextmanager
def _driver_calls(conn: Connection) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def keep(_c: object, _cur: object, statement: str, parameters: Any, *_rest: object) -> None:
        seen.append((statement, parameters))

    event.listen(conn.engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(conn.engine, "before_cursor_execute", keep)


def _deal(conveyor: Conveyor, key: str) -> int:
    return conveyor.create_deal(
        "techflow", key=key, title="Same", stage="qualification", fields={"budget": "yes"}
    )


def _normalised(calls: list[tuple[str, Any]]) -> list[Any]:
    """The parameters the driver got, comparable across both paths (a tuple, a list or a dict; psycopg's
    JSON wrapper compared by what it wraps and by its type)."""

    def plain(v: Any) -> Any:
        return (type(v).__name__, v.obj) if hasattr(v, "obj") else v

    return [
        {k: plain(v) for k, v in p.items()} if isinstance(p, dict) else [plain(v) for v in p]
        for _sql, p in calls
    ]


def test_history_and_audit_rows_are_stored_byte_for_byte_as_sqlalchemy_stores_them(
    conveyor: Conveyor,
) -> None:
    deal_id = _deal(conveyor, "EQ-1")
    event_row = {"deal_id": deal_id, "at": AT, "kind": "updated", "actor": "Оксана", "data": DATA}
    audit_row = {
        "at": AT,
        "actor_kind": "user",
        "actor": "Оксана",
        "kind": "deal_edited",
        "deal_id": deal_id,
        "subject": "EQ-1 Same",
        "detail": DATA,
    }
    event_columns = ["deal_id", "at", "kind", "actor", "data"]
    audit_columns = [c for c in audit_row]
    with db_session(conveyor) as s:
        conn = s.connection()
        with _driver_calls(conn) as through_sqlalchemy:
            conn.execute(table_of(DealEvent).insert(), event_row)
            conn.execute(table_of(AuditEntry).insert(), audit_row)
        event_a, audit_a = _last_id(conn, "deal_events"), _last_id(conn, "audit_log")
        with _driver_calls(conn) as on_cursor:
            repo.add_event(s, **event_row)
            people.add_audit(s, **audit_row)
        event_b, audit_b = _last_id(conn, "deal_events"), _last_id(conn, "audit_log")
        assert (event_b, audit_b) > (event_a, audit_a)
        assert _stored(conn, "deal_events", event_a, event_columns) == _stored(
            conn, "deal_events", event_b, event_columns
        )
        assert _stored(conn, "audit_log", audit_a, audit_columns) == _stored(
            conn, "audit_log", audit_b, audit_columns
        )
    # The driver received the same values both ways (PostgreSQL's SQLAlchemy INSERT adds only a
    # RETURNING of the id, which the change path does not need).
    assert _normalised(on_cursor) == _normalised(through_sqlalchemy)
    assert [sql for sql, _p in on_cursor] == [
        sql.replace(" RETURNING deal_events.id", "").replace(" RETURNING audit_log.id", "")
        for sql, _p in through_sqlalchemy
    ]
    # What the ORM reads back is the same too.
    with db_session(conveyor) as s:
        a, b = (s.get(DealEvent, i) for i in (event_a, event_b))
        assert a is not None and b is not None
        assert (a.at, a.data, a.actor) == (b.at, b.data, b.actor) == (AT, DATA, "Оксана")


def _changed_columns(at: datetime) -> dict[str, Any]:
    return {
        "updated_at": at,
        "last_activity_at": at + timedelta(microseconds=1),
        "activity_seq": 7,
        "amount": 1234.5678,
        "closed": True,
        "fields": {"budget": "no", "ключ": [1, 2.25, None]},
        "next_due_at": None,
        "title": "Новий заголовок",
    }


def test_a_locked_deal_reads_and_saves_exactly_what_sqlalchemy_reads_and_saves(
    conveyor: Conveyor,
) -> None:
    a_id, b_id = _deal(conveyor, "EQ-A"), _deal(conveyor, "EQ-B")
    deals = table_of(Deal)
    changed = _changed_columns(AT)
    with db_session(conveyor) as s:
        conn = s.connection()
        through_sqlalchemy = dict(
            conn.execute(select(deals).where(deals.c.id == b_id)).mappings().one()
        )
        locked = repo.lock_deal_for_change(s, b_id)
        assert locked is not None
        assert locked.loaded == through_sqlalchemy  # aware datetimes, dicts, booleans alike
        version = conn.execute(
            text("SELECT active_version_id FROM funnels WHERE id = 'techflow'")
        ).scalar()
        assert locked.active_version_id == version
        conn.execute(update(deals).where(deals.c.id == a_id).values(**changed))
        for column, value in changed.items():
            setattr(locked.deal, column, value)
        assert repo.save_locked_deal(s, locked)
        columns = [c for c in DEAL_COLUMNS if c not in ("id", "key")]
        assert _stored(conn, "deals", a_id, columns) == _stored(conn, "deals", b_id, columns)
        assert not repo.save_locked_deal(s, locked)  # nothing altered since: no statement


def test_the_end_of_a_change_stores_what_three_separate_statements_store(
    conveyor: Conveyor,
) -> None:
    """``save_change``: one statement on PostgreSQL (data-modifying CTEs), three on SQLite; the rows
    are the same as the separate INSERTs and UPDATE through SQLAlchemy store, in one transaction."""
    a_id, b_id = _deal(conveyor, "EQ-C"), _deal(conveyor, "EQ-D")
    deals = table_of(Deal)
    changed = _changed_columns(AT)

    def rows(deal_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        return (
            {"deal_id": deal_id, "at": AT, "kind": "updated", "actor": "Оксана", "data": DATA},
            {
                "at": AT,
                "actor_kind": "user",
                "actor": "Оксана",
                "kind": "deal_edited",
                "deal_id": deal_id,
                "subject": "EQ Same",
                "detail": DATA,
            },
        )

    with db_session(conveyor) as s:
        conn = s.connection()
        event_a, audit_a = rows(a_id)
        conn.execute(table_of(DealEvent).insert(), event_a)
        conn.execute(table_of(AuditEntry).insert(), audit_a)
        conn.execute(update(deals).where(deals.c.id == a_id).values(**changed))
        ids_a = _last_id(conn, "deal_events"), _last_id(conn, "audit_log")
        locked = repo.lock_deal_for_change(s, b_id)
        assert locked is not None
        for column, value in changed.items():
            setattr(locked.deal, column, value)
        with _driver_calls(conn) as calls:
            repo.save_change(s, locked, *rows(b_id))
        assert len(calls) == (1 if conn.dialect.name == "postgresql" else 3), calls
        ids_b = _last_id(conn, "deal_events"), _last_id(conn, "audit_log")
        columns = [c for c in DEAL_COLUMNS if c not in ("id", "key")]
        assert _stored(conn, "deals", a_id, columns) == _stored(conn, "deals", b_id, columns)
        ev = ["at", "kind", "actor", "data"]
        assert _stored(conn, "deal_events", ids_a[0], ev) == _stored(
            conn, "deal_events", ids_b[0], ev
        )
        au = ["at", "actor_kind", "actor", "kind", "subject", "detail"]
        assert _stored(conn, "audit_log", ids_a[1], au) == _stored(conn, "audit_log", ids_b[1], au)
        # Nothing of the deal changed: the history and audit rows alone, still one statement on
        # PostgreSQL.
        with _driver_calls(conn) as calls:
            repo.save_change(s, locked, *rows(b_id))
        assert len(calls) == (1 if conn.dialect.name == "postgresql" else 2), calls
        assert _last_id(conn, "deal_events") == ids_b[0] + 1


def test_driver_errors_are_sqlalchemy_errors_and_savepoints_hold(conveyor: Conveyor) -> None:
    a_id, b_id = _deal(conveyor, "EQ-E"), _deal(conveyor, "EQ-F")
    deals = table_of(Deal)
    rename = Statement(update(deals).where(deals.c.id == a_id), column_keys=["key"])
    with pytest.raises(IntegrityError):  # the key is unique: what Connection.execute raises
        with db_session(conveyor) as s:
            rename.execute(s.connection(), {"key": "EQ-F"})
    with db_session(conveyor) as s:
        conn = s.connection()
        inner = conn.begin_nested()
        rename.execute(conn, {"key": "EQ-G"})
        assert conn.execute(select(deals.c.key).where(deals.c.id == a_id)).scalar() == "EQ-G"
        inner.rollback()  # the statement ran inside the savepoint
        assert conn.execute(select(deals.c.key).where(deals.c.id == a_id)).scalar() == "EQ-E"
    assert b_id != a_id


def test_a_change_through_the_engine_stores_aware_instants_and_json_as_before(
    conveyor: Conveyor,
) -> None:
    deal_id = _deal(conveyor, "EQ-H")
    conveyor.clock.set(datetime(2026, 3, 3, 8, 0, 0, 654321, tzinfo=UTC))
    conveyor.update_deal(deal_id, {"title": "Ще раз", "budget": "no"})
    with db_session(conveyor) as s:
        deal = s.get(Deal, deal_id)
        assert deal is not None
        assert deal.updated_at == conveyor.clock.now() and deal.title == "Ще раз"
        assert deal.fields["budget"] == "no"
        history = repo.list_events(s, deal_id)[-1]
        assert history.at == conveyor.clock.now()
        assert history.data["title"] == {"from": "Same", "to": "Ще раз"}
        entry = people.list_audit(s, deal_id=deal_id, limit=1)[0]
        assert entry.kind == "deal_edited" and entry.detail == history.data


def test_with_echo_on_a_change_goes_through_sqlalchemy_logged_and_stores_the_same(
    conveyor: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    """Debugging with ``echo``: the hot statements are logged as SQLAlchemy logs them, and the
    change reads and writes exactly what it does without echo."""
    quiet_id, echoed_id = _deal(conveyor, "EQ-Q"), _deal(conveyor, "EQ-R")
    conveyor.update_deal(quiet_id, {"title": "Тихо", "budget": "no"})
    conveyor.engine.echo = True
    try:
        with caplog.at_level("INFO", logger="sqlalchemy.engine.Engine"):
            conveyor.update_deal(echoed_id, {"title": "Тихо", "budget": "no"})
    finally:
        conveyor.engine.echo = False
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "FROM deals" in logged and "UPDATE deals" in logged
    with db_session(conveyor) as s:
        quiet, echoed = s.get(Deal, quiet_id), s.get(Deal, echoed_id)
        assert quiet is not None and echoed is not None
        assert (echoed.title, echoed.fields, echoed.updated_at) == (
            quiet.title,
            quiet.fields,
            quiet.updated_at,
        )
        assert repo.list_events(s, echoed_id)[-1].data == repo.list_events(s, quiet_id)[-1].data

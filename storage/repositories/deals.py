"""Deals: one at a time, by key, in bulk, and counted per funnel and stage."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, configure_mappers
from sqlalchemy.sql.elements import BindParameter

from storage.models import Deal, Firing, Funnel, Manager, Task
from storage.repositories.common import dialect_name, table_of
from storage.statements import Statement


def get_deal(session: Session, deal_id: int, *, for_update: bool = False) -> Deal | None:
    if for_update and dialect_name(session) == "postgresql":
        return session.scalar(select(Deal).where(Deal.id == deal_id).with_for_update())
    return session.get(Deal, deal_id)


def get_deal_by_key(session: Session, key: str) -> Deal | None:
    return session.scalar(select(Deal).where(Deal.key == key))


def add_deal(session: Session, **values: Any) -> Deal:
    row = Deal(**values)
    session.add(row)
    session.flush()
    return row


def list_deals(
    session: Session,
    funnel_id: str | None = None,
    *,
    open_only: bool = False,
    limit: int | None = None,
    manager_id: int | None = None,
) -> list[Deal]:
    q = select(Deal).order_by(Deal.id)
    if funnel_id:
        q = q.where(Deal.funnel_id == funnel_id)
    if manager_id is not None:
        q = q.where(Deal.manager_id == manager_id)
    if open_only:
        q = q.where(Deal.closed.is_(False))
    if limit:
        q = q.limit(limit)
    return list(session.scalars(q))


def deals_by_ids(session: Session, ids: Sequence[int], *, skip_locked: bool = False) -> list[Deal]:
    """Deals by id. ``skip_locked`` (PostgreSQL; SQLite's single writer needs nothing): lock them for
    this transaction and leave out those another transaction holds — a tick must not evaluate (and
    then overwrite the next due time of) a deal that a change or another engine is writing."""
    if not ids:
        return []
    q = select(Deal).where(Deal.id.in_(ids)).order_by(Deal.id)
    if skip_locked and dialect_name(session) == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return list(session.scalars(q))


def deals_referencing_stage(session: Session, funnel_id: str, stage: str) -> list[Deal]:
    return list(
        session.scalars(select(Deal).where(Deal.funnel_id == funnel_id, Deal.stage == stage))
    )


def deal_keys_in_stage(session: Session, funnel_id: str, stage: str, limit: int) -> list[str]:
    """Keys of the first ``limit`` deals (by id) in one stage of one funnel."""
    return list(
        session.scalars(
            select(Deal.key)
            .where(Deal.funnel_id == funnel_id, Deal.stage == stage)
            .order_by(Deal.id)
            .limit(limit)
        )
    )


def next_deal_number(session: Session) -> int:
    return (session.scalar(select(func.max(Deal.id))) or 0) + 1


def add_deals_bulk(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many deals in one statement (load tests, imports); nothing is evaluated here."""
    if rows:
        session.execute(table_of(Deal).insert(), list(rows))


def deal_id_by_key(session: Session, key: str) -> int | None:
    """The id of the deal ``key`` (a Core statement: no ORM instance is built for one number)."""
    return session.connection().execute(_DEAL_ID_BY_KEY, {"key": key}).scalar()


def deal_ids_by_keys(session: Session, keys: Sequence[str]) -> list[int]:
    return list(session.scalars(select(Deal.id).where(Deal.key.in_(list(keys)))))


def deal_id_of_keys(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """``{key: id}`` for the deals with these keys."""
    return {
        k: i for k, i in session.execute(select(Deal.key, Deal.id).where(Deal.key.in_(list(keys))))
    }


def deal_counts_by_funnel(session: Session) -> dict[str, int]:
    return dict(
        session.execute(select(Deal.funnel_id, func.count()).group_by(Deal.funnel_id)).all()
    )


def deal_stage_counts(session: Session, funnel_id: str | None = None) -> list[tuple[str, str, int]]:
    q = select(Deal.funnel_id, Deal.stage, func.count()).group_by(Deal.funnel_id, Deal.stage)
    if funnel_id:
        q = q.where(Deal.funnel_id == funnel_id)
    return [(funnel, stage, count) for funnel, stage, count in session.execute(q)]


@dataclass
class LockedDeal:
    """A deal read for one change, with what the change needs besides the row, in one or two statements.

    ``deal`` is a transient ``Deal`` (not in the session: no identity map, no unit of work);
    ``save_locked_deal`` writes the columns the change altered in one UPDATE. ``fired``: the deal's
    recorded (rule, occurrence) pairs; ``active_version_id``: its funnel's active rule-set version,
    read after the deal's lock was granted, so a version activated before the change is seen.
    """

    deal: Deal
    loaded: dict[str, Any]
    active_version_id: int | None
    fired: set[tuple[str, str]]


_LOCK_STATEMENTS: dict[str, tuple[Statement, Statement | None]] = {}


def _lock_statements(dialect: str) -> tuple[Statement, Statement | None]:
    # Built once per dialect and run on the driver's cursor (storage.statements): a change's hot path.
    found = _LOCK_STATEMENTS.get(dialect)
    if found is not None:
        return found
    deals, funnels, firings = table_of(Deal), table_of(Funnel), table_of(Firing)
    deal_id: BindParameter[int] = bindparam("deal_id")
    version = (
        select(funnels.c.active_version_id)
        .where(funnels.c.id == deals.c.funnel_id)
        .scalar_subquery()
    )
    if dialect == "postgresql":
        pairs = func.json_agg(func.json_build_array(firings.c.rule_id, firings.c.occurrence))
    else:
        pairs = func.json_group_array(func.json_array(firings.c.rule_id, firings.c.occurrence))
    fired = select(pairs).where(firings.c.deal_id == deals.c.id).scalar_subquery()
    if dialect == "postgresql":
        # Lock first, then read the rest in a second statement: under READ COMMITTED a statement that
        # waited for the row lock re-reads the row but not its subqueries, which could miss a version
        # activated (or a firing recorded) by the transaction that held the lock.
        lock = select(deals).where(deals.c.id == deal_id).with_for_update()
        rest = select(version.label("version"), fired.label("fired")).where(deals.c.id == deal_id)
        found = (Statement(lock), Statement(rest))
    else:  # BEGIN IMMEDIATE already holds the one write lock: one statement reads everything
        found = (
            Statement(
                select(deals, version.label("version"), fired.label("fired")).where(
                    deals.c.id == deal_id
                )
            ),
            None,
        )
    _LOCK_STATEMENTS[dialect] = found
    return found


def lock_deal_for_change(session: Session, deal_id: int) -> LockedDeal | None:
    """Lock a deal for a change (PostgreSQL: ``FOR UPDATE``; SQLite: the writer's lock) and read it
    with its funnel's active version and its fired occurrences; None if there is no such deal."""
    conn = session.connection()  # the session's transaction (a group commit's savepoint included)
    lock, rest = _lock_statements(conn.dialect.name)
    params = {"deal_id": deal_id}
    row = lock.first(conn, params)
    if row is None:
        return None
    n = len(DEAL_COLUMNS)
    extra = row[n:] if rest is None else rest.first(conn, params)
    if extra is None:  # pragma: no cover - the locked row cannot vanish inside the transaction
        return None
    loaded = dict(zip(DEAL_COLUMNS, row[:n], strict=True))
    version, pairs = extra
    if isinstance(pairs, str | bytes):
        pairs = json.loads(pairs)
    # Not Deal(**loaded): its per-attribute events were a quarter of the change's CPU before.
    deal = transient_deal(loaded)
    return LockedDeal(
        deal=deal,
        loaded=loaded,
        active_version_id=version,
        fired={(rule, occurrence) for rule, occurrence in pairs or ()},
    )


#: The ``deals`` columns in table order (what a ``LockedDeal`` loads and compares).
DEAL_COLUMNS = tuple(c.name for c in table_of(Deal).columns)
_DEAL_ID_BY_KEY = select(table_of(Deal).c.id).where(table_of(Deal).c.key == bindparam("key"))
_NEW_DEAL = Deal.__mapper__.class_manager.new_instance
_SAVE_DEAL = table_of(Deal).update().where(table_of(Deal).c.id == bindparam("deal_id_"))
#: The deal's UPDATE for each set of changed columns (in table order), compiled once each.
_SAVES: dict[tuple[str, ...], Statement] = {}


def changed_columns(locked: LockedDeal) -> dict[str, Any]:
    """The columns a change altered on a ``LockedDeal``, with their new values (JSON by value)."""
    state, loaded = locked.deal.__dict__, locked.loaded  # a transient deal: its attributes are here
    return {c: v for c in DEAL_COLUMNS if (v := state.get(c)) != loaded[c]}


def save_locked_deal(session: Session, locked: LockedDeal) -> bool:
    """Write what the change altered on a ``LockedDeal`` (one UPDATE; none when nothing changed).

    JSON columns are compared by value: the engine reassigns them, it never mutates them in place.
    """
    loaded, changed = locked.loaded, changed_columns(locked)
    if not changed:
        return False
    columns = tuple(changed)
    stmt = _SAVES.get(columns)
    if stmt is None:
        if len(_SAVES) > 1000:  # a bound, never reached by the commands (a few column sets each)
            _SAVES.clear()
        stmt = _SAVES[columns] = Statement(_SAVE_DEAL, column_keys=columns)
    stmt.execute(session.connection(), {"deal_id_": loaded["id"], **changed})
    locked.loaded = {**loaded, **changed}
    return True


@dataclass(frozen=True)
class DealRows:
    """What a deal's view shows, read with three Core statements (``read_deal_view``)."""

    deal: Deal  # transient, not in the session
    manager_name: str | None
    active_version_id: int | None
    #: open tasks by (due_at, id): rows with the ``Task`` columns the view shows and ``manager``.
    open_tasks: list[Any]
    #: firings newest first: rows of ``rule_id, rule_name, fired_at, trigger, fired_values``.
    firings: list[Any]


def _view_statements() -> tuple[Any, Any, Any]:
    deals, managers, funnels = table_of(Deal), table_of(Manager), table_of(Funnel)
    tasks, firings = table_of(Task), table_of(Firing)
    deal = (
        select(*deals.c, managers.c.name.label("manager_name_"), funnels.c.active_version_id)
        .outerjoin(managers, managers.c.id == deals.c.manager_id)
        .outerjoin(funnels, funnels.c.id == deals.c.funnel_id)
        .where(deals.c.key == bindparam("key"))
    )
    open_tasks = (
        select(
            tasks.c.id,
            tasks.c.kind,
            tasks.c.title,
            tasks.c.priority,
            tasks.c.status,
            tasks.c.due_at,
            tasks.c.created_at,
            tasks.c.done_at,
            tasks.c.closed_reason,
            managers.c.name.label("manager"),
        )
        .outerjoin(managers, managers.c.id == tasks.c.manager_id)
        .where(tasks.c.deal_id == bindparam("deal_id"), tasks.c.status == "open")
        .order_by(tasks.c.due_at, tasks.c.id)
    )
    fired = (
        select(
            firings.c.rule_id,
            firings.c.rule_name,
            firings.c.fired_at,
            firings.c.trigger,
            firings.c["values"].label("fired_values"),
        )
        .where(firings.c.deal_id == bindparam("deal_id"))
        .order_by(firings.c.fired_at.desc(), firings.c.id.desc())
    )
    return deal, open_tasks, fired


_VIEW_STATEMENTS: list[tuple[Any, Any, Any]] = []


def read_deal_view(session: Session, key: str) -> DealRows | None:
    """The deal ``key`` with its manager's name, its funnel's active version id, its open tasks and
    its firings; None if there is no such deal. Core statements, built once: the ORM's six queries
    for the same rows were a quarter of an API event's server CPU."""
    if not _VIEW_STATEMENTS:
        _VIEW_STATEMENTS.append(_view_statements())
    deal_q, tasks_q, firings_q = _VIEW_STATEMENTS[0]
    conn = session.connection()
    row = conn.execute(deal_q, {"key": key}).mappings().first()
    if row is None:
        return None
    deal = transient_deal({c: row[c] for c in DEAL_COLUMNS})
    return DealRows(
        deal=deal,
        manager_name=row["manager_name_"],
        active_version_id=row["active_version_id"],
        open_tasks=list(conn.execute(tasks_q, {"deal_id": deal.id})),
        firings=list(conn.execute(firings_q, {"deal_id": deal.id})),
    )


def transient_deal(loaded: dict[str, Any]) -> Deal:
    """A ``Deal`` not in any session, filled as the ORM's own loader fills one (its ``__dict__``),
    without the per-attribute events of ``Deal(**loaded)``. A Core statement does not configure the
    mappers, and the instance needs them (a no-op once done)."""
    if not Deal.__mapper__.configured:
        configure_mappers()
    deal: Deal = _NEW_DEAL()
    deal.__dict__.update(loaded)
    return deal

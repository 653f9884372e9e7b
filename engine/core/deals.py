"""Deal commands and managers: every change to a deal, from any door, is one of these.

A change locks its deal, first fires what fell due on the deal as it stood (``Evaluation.catch_up``),
applies itself, records an event and evaluates the deal: all in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.core.access import Actor, Permission, actor_of, require
from engine.core.audit import deal_change, deal_change_rows
from engine.core.context import Context
from engine.core.deal_input import (
    MANAGER_NAME_LIMIT,
    MANAGER_PHONE_LIMIT,
    MAX_SHORT_TEXT,
    MAX_TEXT,
    blank,
    clean_fields,
    clean_key,
    clean_text,
    event_data,
    event_instant,
    jsonable,
)
from engine.core.evaluation import Evaluation, enter_stage, guard_failed
from engine.core.explain import task_status_text
from engine.core.rulesets import RuleSets
from engine.document.ruleset import EventDef, EventSource, RuleSet, StageKind
from engine.document.suggestions import suggest
from engine.errors import Forbidden, InvalidChange, NotFound, TransitionNotAllowed
from engine.i18n import _
from engine.rules.deal import BUILTIN_FIELDS
from engine.rules.registry import with_event
from storage import repositories as repo
from storage.errors import StorageError
from storage.models import Deal

__all__ = ["Deals", "Manager"]

#: What a change does to its locked deal; returns the event's data.
Mutation = Callable[[Session, Deal, RuleSet, datetime], dict[str, Any]]


@dataclass(frozen=True)
class Manager:
    id: int
    name: str
    phone: str
    active: bool


class _NothingToDo(Exception):
    """A change found, under its lock, that it has nothing left to do: its transaction rolls back."""


class Deals:
    """Deal commands (create, update, move, declared events, activity) and the managers."""

    def __init__(self, context: Context, rulesets: RuleSets, evaluation: Evaluation):
        self._context = context
        self._rulesets = rulesets
        self._evaluation = evaluation

    # -- managers --------------------------------------------------------------------------------
    def add_manager(self, name: str, phone: str = "", *, actor: Actor | str = "system") -> int:
        require(actor, Permission.MANAGE_MANAGERS)
        name = clean_text(
            "manager name",
            name.strip() if isinstance(name, str) else name,
            MANAGER_NAME_LIMIT,
            one_line=True,
        )
        if not name:
            raise InvalidChange("manager name is empty")
        clean_text("manager phone", phone, MANAGER_PHONE_LIMIT, one_line=True)
        try:
            with self._context.transaction() as s:
                if repo.get_manager_by_name(s, name):
                    raise InvalidChange(f"a manager named '{name}' already exists")
                return repo.add_manager(s, name, phone).id
        except IntegrityError:  # added by someone else between our check and our insert
            raise InvalidChange(
                f"a manager named '{name}' was added by someone else at the same time;"
                " refresh and try again (with another name if it is a different person)"
            ) from None

    def set_manager_active(
        self, manager_id: int, active: bool, *, actor: Actor | str = "system"
    ) -> None:
        require(actor, Permission.MANAGE_MANAGERS)
        with self._context.transaction() as s:
            m = next((m for m in repo.list_managers(s) if m.id == manager_id), None)
            if m is None:
                raise NotFound(f"no manager {manager_id}")
            m.active = active

    def managers(self) -> list[Manager]:
        with self._context.transaction() as s:
            return [
                Manager(m.id, m.name, m.phone or "", bool(m.active)) for m in repo.list_managers(s)
            ]

    # -- deal changes ----------------------------------------------------------------------------
    def create(
        self,
        funnel: str,
        *,
        key: str | None = None,
        title: str = "",
        stage: str | None = None,
        fields: dict[str, Any] | None = None,
        manager: str | None = None,
        actor: Actor | str = "system",
    ) -> int:
        who = _acting(actor, Permission.WRITE_DEALS)
        actor = who.label
        now = self._context.clock.now()
        # Checked before any query: a NUL or a lone surrogate in a lookup is a raw database error.
        clean_text("funnel", funnel, MAX_SHORT_TEXT, one_line=True)
        if stage is not None:
            clean_text("stage", stage, MAX_SHORT_TEXT, one_line=True)
        if manager:
            clean_text("manager", manager, MAX_SHORT_TEXT, one_line=True)
        clean_text("actor", actor, MAX_SHORT_TEXT, one_line=True)
        with self._context.transaction() as s:
            rs, _version = self._rulesets.active(s, funnel)
            stage = stage or rs.entry_stage
            st = rs.stage(stage)
            if st is None:
                raise InvalidChange(
                    f"unknown stage '{stage}' in funnel '{funnel}'"
                    f"{suggest(stage, [x.id for x in rs.stages])}"
                )
            key = clean_key(key) if key is not None and str(key).strip() else None
            if key is not None:
                if repo.get_deal_by_key(s, key):
                    raise InvalidChange(f"a deal with key '{key}' already exists")
            builtin, custom = clean_fields(rs, {"title": title, **(fields or {})})
            if st.guard:  # creating a deal straight into a guarded stage must not bypass its guard
                missing = [
                    f
                    for f in st.guard.required_fields
                    if blank(builtin.get(f) if f in BUILTIN_FIELDS else custom.get(f))
                ]
                if missing:
                    raise guard_failed(rs, st, missing)
            manager_id = None
            if manager:
                m = repo.get_manager_by_name(s, manager)
                if m is None:
                    raise NotFound(f"no manager named '{manager}'")
                manager_id = m.id
            if who.own_deals_only:  # a manager's new deal is theirs
                if manager_id not in (None, who.manager_id):
                    raise Forbidden(_("a manager creates deals for themselves only"))
                manager_id = who.manager_id
            try:
                deal = repo.add_deal(
                    s,
                    key=key or f"tmp-{uuid.uuid4().hex}",
                    funnel_id=funnel,
                    stage=stage,
                    closed=st.kind is not StageKind.OPEN,
                    stage_visit=1,
                    stage_entered_at=now,
                    activity_seq=0,
                    fields=custom,
                    manager_id=manager_id,
                    created_at=now,
                    updated_at=now,
                    **{k: v for k, v in builtin.items() if v is not None},
                )
                if not key:  # D-<id> is free: explicit keys may not look like one (clean_key)
                    deal.key = f"D-{deal.id}"
                    s.flush()
            except IntegrityError:  # created by someone else between our check and our insert
                raise InvalidChange(
                    f"a deal with key '{key or 'D-<number>'}' was created by someone else at"
                    " the same time; nothing was saved; try again (with another key)"
                ) from None
            deal_change(
                s, deal, now, "created", who, {"stage": stage, "fields": {**builtin, **custom}}
            )
            self._evaluation.evaluate(s, deal, now, "create")
            return deal.id

    def update(
        self, deal_id: int, fields: dict[str, Any], *, actor: Actor | str = "manager"
    ) -> None:
        """Change built-in (title, phone, email, amount) and custom fields; a manager's edit is activity."""
        who = _acting(actor, Permission.WRITE_DEALS)

        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            return self._write_fields(deal, rs, fields)

        self._change(deal_id, "updated", who, mutate, manager_activity=who.is_manager_activity)

    def move(self, deal_id: int, stage: str, *, actor: Actor | str = "manager") -> None:
        """A manual stage move: allowed transitions and the target's entry guard are enforced."""
        who = _acting(actor, Permission.MOVE_DEALS)
        clean_text("stage", stage, MAX_SHORT_TEXT, one_line=True)

        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            if rs.stage(stage) is None:
                raise InvalidChange(
                    f"unknown stage '{stage}'{suggest(stage, [x.id for x in rs.stages])}"
                )
            if deal.stage == stage:
                raise InvalidChange(f"deal {deal.key} is already in stage '{stage}'")
            if rs.transitions and not rs.allows(deal.stage, stage):
                allowed = [t.to for t in rs.transitions if t.from_ == deal.stage]
                raise TransitionNotAllowed(
                    f"moving from '{deal.stage}' to '{stage}' is not an allowed transition"
                    f" (allowed from '{deal.stage}': {', '.join(allowed) or 'none'})"
                )
            return enter_stage(s, deal, rs, stage, now)

        self._change(deal_id, "stage_moved", who, mutate, manager_activity=True)

    def reassign(self, deal_id: int, manager: str, *, actor: Actor | str = "system") -> bool:
        """Give the deal to another active manager (owner only); its open tasks and its manager
        messages not yet sent go with it. Rules reading the manager see the change at once.

        The deal's own manager already: nothing is written and False is returned (a PATCH repeated,
        a page sent twice), as an unknown or deactivated manager is refused by name."""
        who = _acting(actor, Permission.REASSIGN_DEALS)
        if not isinstance(manager, str) or not manager.strip():
            raise InvalidChange(_("manager: name the manager to give the deal to"))
        name = clean_text("manager", manager.strip(), MAX_SHORT_TEXT, one_line=True)

        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            m = repo.get_manager_by_name(s, name)
            if m is None:
                names = [x.name for x in repo.list_managers(s) if x.active]
                # Not NotFound: the deal exists, the body names nobody (a 422, not a 404, over HTTP).
                raise InvalidChange(
                    _("manager: no manager named '{name}'").format(name=name) + suggest(name, names)
                )
            if not m.active:
                raise InvalidChange(
                    _(
                        "manager: '{name}' is deactivated; re-activate them or give the deal to an"
                        " active manager"
                    ).format(name=name)
                )
            if deal.manager_id == m.id:
                raise _NothingToDo
            before = repo.manager_names(s).get(deal.manager_id) if deal.manager_id else None
            deal.manager_id = m.id
            tasks, messages = repo.hand_over_work(s, deal.id, m.id)
            return {"from": before, "to": m.name, "tasks": tasks, "messages": messages}

        try:
            self._change(deal_id, "manager_changed", who, mutate, manager_activity=False)
        except _NothingToDo:
            return False
        return True

    def record_event(
        self,
        deal_id: int,
        name: str,
        at: datetime | None = None,
        data: dict[str, Any] | None = None,
        *,
        actor: Actor | str | None = None,
        only_if: Callable[[Session, Deal, RuleSet], bool] | None = None,
    ) -> bool:
        """One occurrence of an event the deal's funnel declares ("demo_booked", "contract_signed").

        ``at``: when it happened (default: now); it may lie in the past (a bank reporting an earlier
        payment), not in the future. ``data``: a flat JSON object kept with the occurrence; the keys
        the declaration maps to fields are written into them. ``actor`` defaults to who the funnel
        says causes the event (``by``); a manager's event counts as their activity.

        ``only_if(session, deal, ruleset)`` runs under the deal's lock, in the event's own transaction,
        before anything is written: when it says False nothing is recorded (and False is returned). A
        door claims a delivery's id there (a signed hook) or checks that a link was not opened yet, so
        the claim and the event commit together or not at all.
        """
        who = _acting(actor, Permission.RECORD_EVENTS) if actor is not None else None
        clean_text("event name", name, MAX_SHORT_TEXT, one_line=True)
        now = self._context.clock.now()
        when = now if at is None else event_instant(at, now)
        payload = event_data(data)

        def declared(rs: RuleSet) -> EventDef:
            ev = rs.event(name)
            if ev is None:
                names = [e.name for e in rs.events]
                raise InvalidChange(
                    f"funnel '{rs.funnel}' declares no event '{name}'{suggest(name, names)}"
                    f" (declared: {', '.join(names) or 'none'})"
                )
            return ev

        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            ev = declared(rs)
            if only_if is not None and not only_if(s, deal, rs):
                raise _NothingToDo
            carried = {f: payload[k] for k, f in ev.fields.items() if k in payload}
            changed = self._write_fields(deal, rs, carried) if carried else {}
            deal.signals = with_event(deal.signals, name, when, deal.stage_visit)
            repo.add_signal(s, deal.id, name, when, deal.stage_visit, jsonable(payload), now)
            out: dict[str, Any] = {"name": name}
            if when != now:
                out["at"] = when
            if payload:
                out["data"] = payload
            if changed:
                out["fields"] = changed
            return out

        try:
            self._change(
                deal_id,
                "event",
                who if who is not None else lambda rs: actor_of(declared(rs).by.value),
                mutate,
                manager_activity=lambda rs: declared(rs).by is EventSource.MANAGER,
            )
        except _NothingToDo:
            return False
        return True

    def record_activity(
        self, deal_id: int, kind: str = "call", note: str = "", *, actor: Actor | str = "manager"
    ) -> None:
        """A manager's call, note, meeting...: re-arms ``after_each_activity`` rules."""
        who = _acting(actor, Permission.RECORD_ACTIVITIES)
        clean_text("activity kind", kind, MAX_SHORT_TEXT, one_line=True)
        clean_text("activity note", note, MAX_TEXT)
        self._change(
            deal_id,
            "activity",
            who,
            lambda s, d, rs, now: {"kind": kind, "note": note},
            manager_activity=True,
        )

    def complete_task(self, task_id: int, *, actor: Actor | str = "manager") -> None:
        """Mark a task or notification done; counts as the manager's activity on its deal."""
        who = _acting(actor, Permission.COMPLETE_TASKS)
        with self._context.transaction() as s:
            task = repo.get_task(s, task_id)
            if task is None:
                raise NotFound(f"no task {task_id}")
            if task.status == "done":
                return
            deal_id = task.deal_id

        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            t = repo.get_task(s, task_id)
            # Checked again under the deal's lock: someone may have completed it since the read above.
            if t is None or t.status == "done":
                raise _NothingToDo
            if t.status == "cancelled":
                raise InvalidChange(
                    _("task {id} is {status}; there is nothing left to complete").format(
                        id=task_id, status=task_status_text(rs, t.status, t.closed_reason)
                    )
                )
            t.status, t.done_at = "done", now
            return {"task": task_id, "title": t.title}

        try:
            self._change(deal_id, "task_done", who, mutate, manager_activity=True)
        except _NothingToDo:
            return

    def import_rows(self, rows: Sequence[dict[str, Any]], *, chunk: int = 2000) -> list[int]:
        """Bulk import of deals given as rows of deal columns (a data import, the load harness).

        Nothing is evaluated now: give each row a ``next_due_at`` (e.g. its creation) and the next
        tick catches it up, as for any imported deal. A row's ``signals`` summary (declared events that
        already happened, ``{name: {"at": ISO instant, "visit": n}}``) is also written as one
        occurrence each. Keys must be new. Returns the deals' ids.
        """
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            with self._context.transaction() as s:
                repo.add_deals_bulk(s, part)
                with_signals = [r for r in part if r.get("signals")]
                if with_signals:
                    ids = repo.deal_id_of_keys(s, [r["key"] for r in with_signals])
                    repo.add_signals_bulk(
                        s,
                        [
                            dict(
                                deal_id=ids[r["key"]],
                                name=name,
                                at=datetime.fromisoformat(entry["at"]),
                                stage_visit=entry["visit"],
                                data={},
                                created_at=r["created_at"],
                            )
                            for r in with_signals
                            for name, entry in r["signals"].items()
                        ],
                    )
        with self._context.transaction() as s:
            return repo.deal_ids_by_keys(s, [r["key"] for r in rows])

    # -- internals of a change ---------------------------------------------------------------------
    @staticmethod
    def _write_fields(deal: Deal, rs: RuleSet, fields: dict[str, Any]) -> dict[str, Any]:
        """Type-checked field values written into the deal; returns what changed ({name: {from, to}})."""
        builtin, custom = clean_fields(rs, fields)
        changed = {}
        for k, v in builtin.items():
            if getattr(deal, k) != v:
                changed[k] = {"from": getattr(deal, k), "to": v}
                setattr(deal, k, v)
        merged = dict(deal.fields or {})
        for k, v in custom.items():
            if merged.get(k) != v:
                changed[k] = {"from": merged.get(k), "to": v}
                merged[k] = v
        deal.fields = merged
        return changed

    def _change(
        self,
        deal_id: int,
        kind: str,
        actor: Actor | Callable[[RuleSet], Actor],
        mutate: Mutation,
        *,
        manager_activity: bool | Callable[[RuleSet], bool],
    ) -> None:
        """``actor`` and ``manager_activity`` may depend on the funnel's active version (a declared
        event says who causes it): then they are read from it inside the transaction."""
        now = self._context.clock.now()
        if self._context.read_only:  # the change path writes with Core statements, not a flush
            raise StorageError(_("a read-only Conveyor cannot change deals"))
        with self._context.transaction() as s:
            # One statement on SQLite (two on PostgreSQL): the deal under its lock, the funnel's
            # active version id and the deal's fired occurrences. The version's rule set is parsed
            # and compiled once per process (versions are immutable), so reading the id here is
            # the whole check that this engine uses the version that is active now.
            locked = repo.lock_deal_for_change(s, deal_id)
            if locked is None:
                raise NotFound(f"no deal {deal_id}")
            deal = locked.deal
            if not callable(actor) and actor.own_deals_only and deal.manager_id != actor.manager_id:
                raise Forbidden(
                    _(
                        "deal {key} is assigned to another manager: a manager changes only their"
                        " own deals"
                    ).format(key=deal.key)
                )
            if locked.active_version_id is None:
                raise NotFound(f"no funnel '{deal.funnel_id}'")
            rs = self._rulesets.by_version_id(s, locked.active_version_id)
            active = (rs, locked.active_version_id)
            self._evaluation.catch_up(s, deal, now, fired=locked.fired, active=active)
            data = mutate(s, deal, rs, now)
            if callable(actor):
                actor = actor(rs)
            if callable(manager_activity):
                manager_activity = manager_activity(rs)
            if manager_activity:
                deal.activity_seq += 1
                deal.last_activity_at = now
            deal.updated_at = now
            event, entry = deal_change_rows(deal, now, kind, actor, data)
            self._evaluation.evaluate(s, deal, now, kind, fired=locked.fired, active=active)
            # The history line, the audit entry and the deal's one UPDATE (its next due instant
            # included): one statement on PostgreSQL, three on SQLite.
            repo.save_change(s, locked, event, entry)


def _acting(actor: Actor | str, permission: Permission) -> Actor:
    """The actor of a command, if its role may do ``permission`` (``Forbidden`` otherwise), its name checked."""
    who = require(actor, permission)
    clean_text("actor", who.label, MAX_SHORT_TEXT, one_line=True)
    return who

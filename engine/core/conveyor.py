"""``Conveyor``: the engine's public API. Every deal change, from a page, the CLI or a test, goes here.

A change, the firings it causes and their outbox rows commit in one transaction; the dispatcher
(``engine.outbox.dispatcher``) carries the outbox out afterwards. Time comes from the injected clock.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.clock import Clock, SystemClock
from engine.core import timers
from engine.crashpoints import crashpoint
from engine.document.ruleset import FieldType, RuleSet, StageKind
from engine.document.validate import _suggest, parse_json, validate_document, validate_text
from engine.errors import (
    ConveyorError,
    GuardFailed,
    InvalidChange,
    NotFound,
    Problem,
    RuleSetInvalid,
    TransitionNotAllowed,
)
from engine.outbox.dispatcher import is_contention
from engine.outbox.providers import MessageProvider, RecordingProvider
from engine.rules.actions import MESSAGE_ACTIONS
from engine.rules.deal import BUILTIN_FIELDS, DealState
from engine.rules.evaluators.compiled import compile_ruleset
from engine.rules.evaluators.reference import Decision, RuleTrace, trace
from engine.text import refusal as text_refusal
from storage import repositories as repo
from storage.db import make_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import Deal

#: A cascade of engine stage moves longer than this is a loop; the move is refused and recorded.
MAX_CASCADE = 10
#: Longest text a built-in deal column holds (storage/models.py): PostgreSQL refuses longer values,
#: and a refused value must be a clear error at the change, not a failing transaction later.
TEXT_LIMITS = {"key": 100, "title": 300, "phone": 50, "email": 200}
MANAGER_NAME_LIMIT, MANAGER_PHONE_LIMIT = 200, 50
#: Largest magnitude a number in a deal may have: beyond it floats lose whole units, and
#: NaN/Infinity are not JSON (PostgreSQL refuses them) and break comparisons.
MAX_NUMBER = 1e15
#: Longest text a custom text field or an activity note may hold (it may become an SMS text).
MAX_TEXT = 10_000
#: Longest activity kind, actor name, version comment and funnel/stage name given to a method.
MAX_SHORT_TEXT, MAX_COMMENT = 200, 2_000
#: Keys the engine generates for keyless deals (``D-<id>``); an explicit key may not take one.
GENERATED_KEY = re.compile(r"^D-\d+$")
#: A deal whose evaluation fails in a tick is tried again this much later (logged and recorded).
TICK_RETRY_DELAY = timedelta(hours=1)

log = logging.getLogger("conveyor.engine")


@dataclass(frozen=True)
class VersionInfo:
    funnel: str
    id: int
    version: int
    comment: str
    author: str
    created_at: datetime
    active: bool


@dataclass(frozen=True)
class TickReport:
    at: datetime
    deals_examined: int
    rules_fired: int
    actions_queued: int
    #: Deals whose evaluation failed; each was logged, recorded and postponed by ``TICK_RETRY_DELAY``.
    deals_failed: int = 0


class Conveyor:
    """One handle on one database: rule sets, deals, evaluation and the outbox."""

    def __init__(self, db: str | Engine | None = None, *, clock: Clock | None = None,
                 provider: MessageProvider | None = None, engine_id: str | None = None,
                 migrate: bool = True):
        self.engine = db if isinstance(db, Engine) else make_engine(db)
        if migrate:
            upgrade(self.engine)
        self.sessions = session_factory(self.engine)
        timers.install(self.sessions)
        self.clock = clock or SystemClock()
        self.provider = provider or RecordingProvider()
        self.engine_id = engine_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._rulesets: dict[int, RuleSet] = {}

    def session(self):  # noqa: ANN201 - context manager of one transaction
        return transaction(self.sessions)

    def read_session(self):  # noqa: ANN201 - context manager of one read-only transaction
        """For reads only (reports, pages): on SQLite it does not wait for a writer's lock; never commits."""
        from storage.db import read_transaction

        return read_transaction(self.sessions)

    def close(self) -> None:
        self.engine.dispose()

    # -- rule sets -------------------------------------------------------------------------------
    def known_funnels(self) -> list[str]:
        with self.session() as s:
            return [f.id for f in repo.list_funnels(s)]

    def validate(self, document: RuleSet | dict | str | bytes, *, known_funnels: Iterable[str] = ()) -> RuleSet:
        """Check a document; ``known_funnels``: funnels ``start_process`` may name besides the stored ones."""
        if isinstance(document, RuleSet):
            document = document.to_document()
        known = [*self.known_funnels(), *known_funnels]
        if isinstance(document, str | bytes):
            return validate_text(document, known_funnels=known)
        return validate_document(document, known_funnels=known)

    def save_ruleset(self, document: RuleSet | dict | str | bytes, *, comment: str = "", author: str = "",
                     activate: bool = True, known_funnels: Iterable[str] = ()) -> VersionInfo:
        """Validate and store a new immutable version (active unless ``activate=False``).

        Refused while deals sit in a stage the new version no longer has (move them first).
        """
        _clean_text("version comment", comment, MAX_COMMENT)
        _clean_text("author", author, MAX_SHORT_TEXT, one_line=True)
        ruleset = self.validate(document, known_funnels=known_funnels)
        now = self.clock.now()
        try:
            with self.session() as s:
                if activate:
                    _refuse_orphaned_deals(s, ruleset, f"version of funnel '{ruleset.funnel}'", RuleSetInvalid)
                funnel = repo.ensure_funnel(s, ruleset.funnel, ruleset.name, now)
                row = repo.add_version(s, ruleset.funnel, ruleset.to_json(), ruleset.fingerprint(), comment, author, now)
                if activate or funnel.active_version_id is None:
                    funnel.active_version_id = row.id
                    timers.rearm_funnel(s, ruleset.funnel, now)  # the new rules' timers differ
                self._rulesets[row.id] = ruleset
                return self._version_info(row, funnel.active_version_id)
        except IntegrityError:
            # Two saves of one funnel at once: both read the same last version number (or both found
            # no funnel); the unique key let one through. Nothing of this save was stored.
            raise ConveyorError(f"someone saved a version of funnel '{ruleset.funnel}' at the same time;"
                                " nothing was saved from this attempt; try again") from None

    def load_rules_dir(self, folder: str | Path, *, comment: str = "", author: str = "") -> list[VersionInfo]:
        """Save every ``*.json`` in ``folder``; funnels that ``start_process`` names are saved first."""
        return self.load_rule_files(sorted(Path(folder).glob("*.json")), comment=comment, author=author)

    def load_rule_files(self, paths: Iterable[str | Path], *, comment: str = "",
                        author: str = "") -> list[VersionInfo]:
        """Validate every file first (each may start the others' processes), then save them in order."""
        docs = read_rule_files(paths)
        folder_funnels = [d["funnel"] for _, d in docs if isinstance(d, dict) and isinstance(d.get("funnel"), str)]
        checked = []
        for path, doc in docs:  # nothing is saved unless every file is valid
            try:
                checked.append((path, self.validate(doc, known_funnels=folder_funnels)))
            except RuleSetInvalid as exc:
                raise RuleSetInvalid([Problem(f"{path.name}: {p.path}" if p.path else path.name, p.message)
                                      for p in exc.problems]) from None
        return [self.save_ruleset(rs, comment=comment or f"loaded from {path.name}", author=author,
                                  known_funnels=folder_funnels) for path, rs in checked]

    def activate(self, funnel: str, version: int) -> VersionInfo:
        """Make an existing version the active one (rollback); refused while deals sit in a stage it lacks."""
        _clean_text("funnel", funnel, None, one_line=True)
        with self.session() as s:
            row = repo.get_version_by_number(s, funnel, version)
            if row is None:
                raise NotFound(f"funnel '{funnel}' has no version {version}")
            _refuse_orphaned_deals(s, self._ruleset_by_id(s, row.id), f"version {version} of funnel '{funnel}'",
                                   InvalidChange)
            f = repo.get_funnel(s, funnel)
            f.active_version_id = row.id
            timers.rearm_funnel(s, funnel, self.clock.now())  # the next tick re-derives due times
            return self._version_info(row, row.id)

    def versions(self, funnel: str) -> list[VersionInfo]:
        _clean_text("funnel", funnel, None, one_line=True)
        with self.session() as s:
            f = repo.get_funnel(s, funnel)
            if f is None:
                raise NotFound(f"no funnel '{funnel}'")
            return [self._version_info(v, f.active_version_id) for v in repo.list_versions(s, funnel)]

    def ruleset(self, funnel: str, version: int | None = None) -> RuleSet:
        """The active rule set of ``funnel`` (or a given version number)."""
        _clean_text("funnel", funnel, None, one_line=True)
        with self.session() as s:
            if version is None:
                f = repo.get_funnel(s, funnel)
                if f is None or f.active_version_id is None:
                    raise NotFound(f"no funnel '{funnel}'{_suggest(funnel, [x.id for x in repo.list_funnels(s)])}")
                return self._ruleset_by_id(s, f.active_version_id)
            row = repo.get_version_by_number(s, funnel, version)
            if row is None:
                raise NotFound(f"funnel '{funnel}' has no version {version}")
            return self._ruleset_by_id(s, row.id)

    def funnels(self) -> list[tuple[str, str]]:
        with self.session() as s:
            return [(f.id, f.name) for f in repo.list_funnels(s)]

    def _ruleset_by_id(self, s: Session, version_id: int) -> RuleSet:
        rs = self._rulesets.get(version_id)
        if rs is None:
            # Versions are immutable, so a parsed one can be cached for the life of the process.
            rs = RuleSet.model_validate_json(repo.get_version(s, version_id).document)
            self._rulesets[version_id] = rs
        return rs

    def _active(self, s: Session, funnel_id: str) -> tuple[RuleSet, int]:
        f = repo.get_funnel(s, funnel_id)
        if f is None or f.active_version_id is None:
            raise NotFound(f"no funnel '{funnel_id}'")
        # A strong reference keeps the row in the session's (weak) identity map: the next lookup in
        # this transaction (every deal of a tick batch) is a dict hit, not a SELECT.
        s.info.setdefault("conveyor.funnels", {})[funnel_id] = f
        return self._ruleset_by_id(s, f.active_version_id), f.active_version_id

    @staticmethod
    def _version_info(row: Any, active_id: int | None) -> VersionInfo:
        return VersionInfo(funnel=row.funnel_id, id=row.id, version=row.version, comment=row.comment,
                           author=row.author, created_at=row.created_at, active=row.id == active_id)

    # -- managers --------------------------------------------------------------------------------
    def add_manager(self, name: str, phone: str = "") -> int:
        name = _clean_text("manager name", name.strip() if isinstance(name, str) else name, MANAGER_NAME_LIMIT,
                           one_line=True)
        if not name:
            raise InvalidChange("manager name is empty")
        _clean_text("manager phone", phone, MANAGER_PHONE_LIMIT, one_line=True)
        try:
            with self.session() as s:
                if repo.get_manager_by_name(s, name):
                    raise InvalidChange(f"a manager named '{name}' already exists")
                return repo.add_manager(s, name, phone).id
        except IntegrityError:  # added by someone else between our check and our insert
            raise InvalidChange(f"a manager named '{name}' was added by someone else at the same time;"
                                " refresh and try again (with another name if it is a different person)") from None

    def set_manager_active(self, manager_id: int, active: bool) -> None:
        with self.session() as s:
            m = next((m for m in repo.list_managers(s) if m.id == manager_id), None)
            if m is None:
                raise NotFound(f"no manager {manager_id}")
            m.active = active

    # -- deal changes ----------------------------------------------------------------------------
    def create_deal(self, funnel: str, *, key: str | None = None, title: str = "", stage: str | None = None,
                    fields: dict[str, Any] | None = None, manager: str | None = None,
                    actor: str = "system") -> int:
        now = self.clock.now()
        # Checked before any query: a NUL or a lone surrogate in a lookup is a raw database error.
        _clean_text("funnel", funnel, MAX_SHORT_TEXT, one_line=True)
        if stage is not None:
            _clean_text("stage", stage, MAX_SHORT_TEXT, one_line=True)
        if manager:
            _clean_text("manager", manager, MAX_SHORT_TEXT, one_line=True)
        _clean_text("actor", actor, MAX_SHORT_TEXT, one_line=True)
        with self.session() as s:
            rs, _ = self._active(s, funnel)
            stage = stage or rs.entry_stage
            st = rs.stage(stage)
            if st is None:
                raise InvalidChange(f"unknown stage '{stage}' in funnel '{funnel}'{_suggest(stage, [x.id for x in rs.stages])}")
            key = _clean_key(key) if key is not None and str(key).strip() else None
            if key is not None:
                if repo.get_deal_by_key(s, key):
                    raise InvalidChange(f"a deal with key '{key}' already exists")
            builtin, custom = self._clean_fields(rs, {"title": title, **(fields or {})})
            if st.guard:  # creating a deal straight into a guarded stage must not bypass its guard
                missing = [f for f in st.guard.required_fields
                           if _blank(builtin.get(f) if f in BUILTIN_FIELDS else custom.get(f))]
                if missing:
                    raise _guard_failed(rs, st, missing)
            manager_id = None
            if manager:
                m = repo.get_manager_by_name(s, manager)
                if m is None:
                    raise NotFound(f"no manager named '{manager}'")
                manager_id = m.id
            try:
                deal = repo.add_deal(s, key=key or f"tmp-{uuid.uuid4().hex}", funnel_id=funnel, stage=stage,
                                     closed=st.kind is not StageKind.OPEN, stage_visit=1, stage_entered_at=now,
                                     activity_seq=0, fields=custom, manager_id=manager_id, created_at=now,
                                     updated_at=now, **{k: v for k, v in builtin.items() if v is not None})
                if not key:  # D-<id> is free: explicit keys may not look like one (_clean_key)
                    deal.key = f"D-{deal.id}"
                    s.flush()
            except IntegrityError:  # created by someone else between our check and our insert
                raise InvalidChange(f"a deal with key '{key or 'D-<number>'}' was created by someone else at"
                                    " the same time; nothing was saved; try again (with another key)") from None
            repo.add_event(s, deal.id, now, "created", actor, {"stage": stage, "fields": {**builtin, **custom}})
            self._evaluate(s, deal, now, "create")
            return deal.id

    def update_deal(self, deal_id: int, fields: dict[str, Any], *, actor: str = "manager") -> None:
        """Change built-in (title, phone, email, amount) and custom fields; a manager's edit is activity."""
        _clean_text("actor", actor, MAX_SHORT_TEXT, one_line=True)
        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            builtin, custom = self._clean_fields(rs, fields)
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
        self._change(deal_id, "updated", actor, mutate, manager_activity=actor != "system")

    def move_deal(self, deal_id: int, stage: str, *, actor: str = "manager") -> None:
        """A manual stage move: allowed transitions and the target's entry guard are enforced."""
        _clean_text("stage", stage, MAX_SHORT_TEXT, one_line=True)
        _clean_text("actor", actor, MAX_SHORT_TEXT, one_line=True)
        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            if rs.stage(stage) is None:
                raise InvalidChange(f"unknown stage '{stage}'{_suggest(stage, [x.id for x in rs.stages])}")
            if deal.stage == stage:
                raise InvalidChange(f"deal {deal.key} is already in stage '{stage}'")
            if rs.transitions and not rs.allows(deal.stage, stage):
                allowed = [t.to for t in rs.transitions if t.from_ == deal.stage]
                raise TransitionNotAllowed(
                    f"moving from '{deal.stage}' to '{stage}' is not an allowed transition"
                    f" (allowed from '{deal.stage}': {', '.join(allowed) or 'none'})")
            return self._enter_stage(deal, rs, stage, now)
        self._change(deal_id, "stage_moved", actor, mutate, manager_activity=True)

    def attach_proposal(self, deal_id: int, *, actor: str = "manager") -> None:
        _clean_text("actor", actor, MAX_SHORT_TEXT, one_line=True)
        self._stamp(deal_id, "proposal_attached", "proposal_attached_at", actor, manager_activity=True)

    def proposal_opened(self, deal_id: int) -> None:
        self._stamp(deal_id, "proposal_opened", "proposal_opened_at", "client", manager_activity=False)

    def client_replied(self, deal_id: int) -> None:
        self._stamp(deal_id, "client_replied", "client_replied_at", "client", manager_activity=False)

    def record_payment(self, deal_id: int, amount: float | None = None) -> None:
        if amount is not None:
            amount = _number("payment amount", amount, non_negative=True)

        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            deal.payment_received_at = deal.payment_received_at or now
            return {"amount": amount}
        self._change(deal_id, "payment_received", "client", mutate, manager_activity=False)

    def record_activity(self, deal_id: int, kind: str = "call", note: str = "", *, actor: str = "manager") -> None:
        """A manager's call, note, meeting...: re-arms ``after_each_activity`` rules."""
        _clean_text("activity kind", kind, MAX_SHORT_TEXT, one_line=True)
        _clean_text("activity note", note, MAX_TEXT)
        _clean_text("actor", actor, MAX_SHORT_TEXT, one_line=True)
        self._change(deal_id, "activity", actor, lambda s, d, rs, now: {"kind": kind, "note": note},
                     manager_activity=True)

    def complete_task(self, task_id: int, *, actor: str = "manager") -> None:
        """Mark a task or notification done; counts as the manager's activity on its deal."""
        _clean_text("actor", actor, MAX_SHORT_TEXT, one_line=True)
        with self.session() as s:
            task = repo.get_task(s, task_id)
            if task is None:
                raise NotFound(f"no task {task_id}")
            if task.status == "done":
                return
            deal_id = task.deal_id

        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            t = repo.get_task(s, task_id)
            # Checked again under the deal's lock: someone may have completed it since the read above.
            if t.status == "done":
                raise _NothingToDo
            t.status, t.done_at = "done", now
            return {"task": task_id, "title": t.title}
        try:
            self._change(deal_id, "task_done", actor, mutate, manager_activity=True)
        except _NothingToDo:
            return

    # -- internals of a change ---------------------------------------------------------------------
    def _stamp(self, deal_id: int, kind: str, column: str, actor: str, *, manager_activity: bool) -> None:
        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            setattr(deal, column, now)
            return {}
        self._change(deal_id, kind, actor, mutate, manager_activity=manager_activity)

    def _change(self, deal_id: int, kind: str, actor: str,
                mutate: Callable[[Session, Deal, RuleSet, datetime], dict[str, Any]], *,
                manager_activity: bool) -> None:
        now = self.clock.now()
        with self.session() as s:
            deal = repo.get_deal(s, deal_id, for_update=True)
            if deal is None:
                raise NotFound(f"no deal {deal_id}")
            self._catch_up(s, deal, now)
            rs, _ = self._active(s, deal.funnel_id)
            data = mutate(s, deal, rs, now)
            if manager_activity:
                deal.activity_seq += 1
                deal.last_activity_at = now
            deal.updated_at = now
            repo.add_event(s, deal.id, now, kind, actor, _jsonable(data))
            self._evaluate(s, deal, now, kind)

    def _catch_up(self, s: Session, deal: Deal, now: datetime) -> list[Decision]:
        """Fire what became due on the deal as it stands, before a change alters it.

        A tick sees a deal only at its interval (or not at all while the engine is down); a change
        that lands between the due instant and the next tick would otherwise reset what the rule
        waits for (the last activity, the stage) and the firing would be lost. Each firing keeps
        its own ``due_at``; the caller's transaction records it together with the change.
        """
        if deal.closed or deal.next_due_at is None or deal.next_due_at > now:
            return []
        return self._evaluate(s, deal, now, "due")

    def _enter_stage(self, deal: Deal, rs: RuleSet, stage: str, now: datetime) -> dict[str, Any]:
        target = rs.stage(stage)
        if target.guard:
            missing = [f for f in target.guard.required_fields if _blank(_field_of(deal, f))]
            if missing:
                raise _guard_failed(rs, target, missing)
        previous = deal.stage
        deal.stage = stage
        deal.stage_visit += 1
        deal.stage_entered_at = now
        deal.closed = target.kind is not StageKind.OPEN
        return {"from": previous, "to": stage}

    def _clean_fields(self, rs: RuleSet, fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split and type-check fields: (built-in deal attributes, custom fields)."""
        builtin, custom = {}, {}
        if not isinstance(fields, dict):
            raise InvalidChange(f"fields must be an object of field names and values, got {_shown(fields)}")
        known = list(BUILTIN_FIELDS) + [f.name for f in rs.fields]
        for name, value in fields.items():
            _clean_text("a field name", name, MAX_SHORT_TEXT, one_line=True)
            if name in BUILTIN_FIELDS:
                if name == "amount":
                    builtin[name] = None if value is None else _number("field 'amount'", value, non_negative=True)
                else:
                    text = "" if value is None else str(value)
                    builtin[name] = _clean_text(f"field '{name}'", text, TEXT_LIMITS.get(name, MAX_TEXT),
                                                one_line=name != "title")
                continue
            fd = rs.field(name)
            if fd is None:
                raise InvalidChange(f"unknown field '{name}' in funnel '{rs.funnel}'{_suggest(name, known)}")
            custom[name] = _clean_value(fd, value)
        return builtin, custom

    def _state(self, s: Session, deal: Deal) -> DealState:
        manager = repo.manager_names(s).get(deal.manager_id) if deal.manager_id else None
        return deal_state(deal, manager)

    def _evaluate(self, s: Session, deal: Deal, now: datetime, trigger: str,
                  chain: list[str] | None = None, *,
                  fired: set[tuple[str, str]] | None = None, flush: bool = True) -> list[Decision]:
        """Evaluate the deal's active rules and record new firings + outbox rows in this transaction.

        Uses the compiled rule set (``engine.rules.evaluators.compiled``; same decisions as ``engine.rules.evaluators.reference.evaluate``)
        and stores the deal's next due instant for ticks. ``fired``: its (rule, occurrence) pairs, if
        the caller already read them (a tick reads a whole batch at once). ``flush=False``: the caller
        flushes (a tick writes a whole batch's rows in one flush).
        """
        plan = self._decide(s, deal, now, fired)
        recorded = self._record(s, [plan], now, trigger, chain)
        if flush:
            s.flush()
        crashpoint("after_evaluate_before_commit")  # crash tests: firings written, not yet committed
        return recorded

    def _decide(self, s: Session, deal: Deal, now: datetime,
                fired: set[tuple[str, str]] | None) -> tuple[Deal, int, list[Decision]]:
        """The deal's new decisions under its funnel's active version; stores its next due instant."""
        timers.begin(s, deal)  # the flushes below belong to this evaluation, not to a bare change
        if deal.id is None:
            s.flush()
        with s.no_autoflush:  # the change is written once, together with its next due instant
            rs, version_id = self._active(s, deal.funnel_id)
            compiled = compile_ruleset(rs)
            if fired is None:
                fired = repo.fired_occurrences(s, deal.id)
        values = compiled.values(deal, now)
        decisions = compiled.evaluate(deal, now, skip=fired, values=values)
        done = fired | {(d.rule.id, d.occurrence) for d in decisions}
        timers.finish(s, deal, None if deal.closed else compiled.next_due(deal, now, done, values=values))
        return deal, version_id, decisions

    def _record(self, s: Session, plans: list[tuple[Deal, int, list[Decision]]], now: datetime, trigger: str,
                chain: list[str] | None = None) -> list[Decision]:
        """Firings and their outbox rows for decided deals: two statements however many deals."""
        rows = [dict(deal_id=deal.id, funnel_id=deal.funnel_id, rule_id=d.rule.id, rule_name=d.rule.name[:300],
                     occurrence=d.occurrence, ruleset_version_id=version_id, trigger=trigger,
                     values=_jsonable(d.values), due_at=d.due_at or now, fired_at=now,
                     chain=[*(chain or []), d.rule.id])
                for deal, version_id, decisions in plans for d in decisions]
        ids = repo.insert_firings(s, rows)
        outbox, recorded = [], []
        for deal, _version_id, decisions in plans:
            for d in decisions:
                firing_id = ids.get((deal.id, d.rule.id, d.occurrence))
                if firing_id is None:
                    continue  # another engine (or a re-run) recorded this occurrence first
                outbox += [dict(firing_id=firing_id, deal_id=deal.id, seq=seq, action=action.name,
                                params=_jsonable(action.params),
                                kind="message" if action.name in MESSAGE_ACTIONS else "internal",
                                status="pending", attempts=0, next_attempt_at=now,
                                idempotency_key=f"conveyor-{firing_id}-{seq}", created_at=now, updated_at=now)
                           for seq, action in enumerate(d.actions)]
                recorded.append(d)
        repo.add_outbox_rows(s, outbox)
        return recorded

    # -- time ------------------------------------------------------------------------------------
    def tick(self, batch: int = 500) -> TickReport:
        """Evaluate the deals whose time conditions became due by ``clock.now()``; catches up any backlog.

        Only deals with ``next_due_at <= now`` are read (``engine.core.timers``): the cost follows the deals
        that became due, and an idle tick is one index probe. ``deals_examined`` counts those deals.
        """
        now = self.clock.now()
        examined = fired = queued = failed = 0
        seen: set[int] = set()
        while True:
            with self.session() as s:
                ids = [i for i in timers.due_deal_ids(s, now, batch) if i not in seen]
                if not ids:
                    break  # (a deal re-marked due within this tick waits for the next one)
                done = repo.fired_occurrences_many(s, ids)
                savepoint = s.begin_nested()
                try:
                    recorded = self._tick_deals(s, ids, done, now)
                    savepoint.commit()
                except Exception as exc:  # noqa: BLE001 - one bad deal must not block every other
                    savepoint.rollback()
                    if is_contention(exc):
                        raise
                    # Deal by deal, each in its own savepoint: the good ones fire, the bad ones wait.
                    recorded = []
                    for deal_id in ids:
                        ok, deal_recorded = self._tick_one(s, deal_id, done, now)
                        recorded += deal_recorded
                        failed += not ok
                crashpoint("after_evaluate_before_commit")
                fired += len(recorded)
                queued += sum(len(d.actions) for d in recorded)
                examined += len(ids)
                seen.update(ids)
        return TickReport(at=now, deals_examined=examined, rules_fired=fired, actions_queued=queued,
                          deals_failed=failed)

    def _tick_deals(self, s: Session, ids: list[int], done: dict[int, set[tuple[str, str]]],
                    now: datetime) -> list[Decision]:
        """Evaluate due deals and record their firings (one flush; SQLAlchemy batches the UPDATEs)."""
        plans = []
        with s.no_autoflush:
            for deal in repo.deals_by_ids(s, ids, skip_locked=True):  # PG: see deals_by_ids
                if deal.closed:
                    deal.next_due_at = None  # closed deals have no time rules to wait for
                    continue
                plans.append(self._decide(s, deal, now, done[deal.id]))
            recorded = self._record(s, plans, now, "tick")  # the whole batch in two INSERTs
        s.flush()
        return recorded

    def _tick_one(self, s: Session, deal_id: int, done: dict[int, set[tuple[str, str]]],
                  now: datetime) -> tuple[bool, list[Decision]]:
        """One deal of a failed batch in its own savepoint; a failure is logged, recorded, postponed."""
        savepoint = s.begin_nested()
        try:
            recorded = self._tick_deals(s, [deal_id], done, now)
            savepoint.commit()
            return True, recorded
        except Exception as exc:  # noqa: BLE001 - reported on the deal, never dropped
            savepoint.rollback()
            if is_contention(exc):
                raise
            reason = str(exc) if isinstance(exc, ConveyorError) else f"{type(exc).__name__}: {exc}"
            reason = reason.splitlines()[0][:500] if reason else type(exc).__name__
            retry_at = now + TICK_RETRY_DELAY
            log.warning("tick: deal %s could not be evaluated (tried again at %s): %s", deal_id,
                        retry_at.isoformat(), reason)
            deal = repo.get_deal(s, deal_id)
            if deal is not None:
                timers.finish(s, deal, retry_at)
                repo.add_event(s, deal_id, now, "evaluation_failed", "engine",
                               {"error": reason, "retry_at": retry_at.isoformat()})
                s.flush()
            return False, []

    # -- reading ---------------------------------------------------------------------------------
    def deal(self, deal_id: int) -> DealState:
        with self.session() as s:
            deal = repo.get_deal(s, deal_id)
            if deal is None:
                raise NotFound(f"no deal {deal_id}")
            return self._state(s, deal)

    def deal_id(self, key: str) -> int:
        _clean_text("deal key", key, None, one_line=True)
        with self.session() as s:
            deal = repo.get_deal_by_key(s, key)
            if deal is None:
                raise NotFound(f"no deal with key '{key}'")
            return deal.id

    def dry_run(self, deal: int | DealState, at: datetime | None = None,
                ruleset: RuleSet | None = None) -> list[RuleTrace]:
        """Which rules would fire for ``deal`` at ``at`` and why; executes and records nothing."""
        state = self.deal(deal) if isinstance(deal, int) else deal
        # A draft (e.g. from the builder) has not been through the validator yet: business-rules would
        # resolve its names with getattr, so it is validated here like any save.
        rs = self.validate(ruleset) if ruleset is not None else self.ruleset(state.funnel)
        return trace(rs, state, at or self.clock.now())

    def export(self, funnel: str, fmt: str = "conveyor", version: int | None = None) -> str:
        rs = self.ruleset(funnel, version)
        if fmt == "conveyor":
            return rs.to_json()
        if fmt == "business-rules":
            return json.dumps(rs.business_rules(), ensure_ascii=False, indent=2) + "\n"
        raise ValueError(f"unknown export format '{fmt}' (use 'conveyor' or 'business-rules')")

    def stage_references(self, funnel: str, stage: str, ruleset: RuleSet | None = None) -> list[str]:
        """What refers to a stage (rules, transitions, guards, deals): deleting it is refused while any do."""
        rs = ruleset or self.ruleset(funnel)
        refs = []
        for i, r in enumerate(rs.rules):
            text = json.dumps(r.business_rule())
            if f'"{stage}"' in text:
                refs.append(f"rule '{r.name or r.id}' (rules[{i}])")
        refs += [f"transition {t.from_} → {t.to}" for t in rs.transitions if stage in (t.from_, t.to)]
        if rs.initial_stage == stage:
            refs.append("the funnel's initial stage")
        with self.session() as s:
            deals = repo.deals_referencing_stage(s, funnel, stage)
        if deals:
            refs.append(f"{len(deals)} deal(s): " + ", ".join(d.key for d in deals[:10]) + (" …" if len(deals) > 10 else ""))
        return refs


# -- helpers ---------------------------------------------------------------------------------------
def read_rule_files(paths: Iterable[str | Path]) -> list[tuple[Path, Any]]:
    """Parse rule-set files (strict JSON: duplicate keys, NaN refused) in the order to save them.

    A funnel that another file's ``start_process`` names comes before that file, however long the
    chain (A starts B starts C: C, B, A); otherwise files keep name order. Cycles are fine: every
    file is validated knowing all the folder's funnels.
    """
    docs = [(Path(p), parse_json(Path(p).read_bytes(), str(p))) for p in sorted(paths, key=str)]
    by_funnel = {d["funnel"]: i for i, (_, d) in enumerate(docs)
                 if isinstance(d, dict) and isinstance(d.get("funnel"), str)}

    def started(doc: Any) -> list[str]:
        if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
            return []
        out = []
        for rule in doc["rules"]:
            for action in (rule.get("actions") if isinstance(rule, dict) else None) or []:
                params = action.get("params") if isinstance(action, dict) else None
                if isinstance(params, dict) and isinstance(params.get("funnel"), str):
                    out.append(params["funnel"])
        return out

    order: list[int] = []
    seen: set[int] = set()

    def visit(i: int) -> None:  # depth-first, targets first; the chain is at most the folder long
        if i in seen:
            return
        seen.add(i)
        for funnel in started(docs[i][1]):
            if funnel in by_funnel:
                visit(by_funnel[funnel])
        order.append(i)

    for i in range(len(docs)):
        visit(i)
    return [docs[i] for i in order]


def _refuse_orphaned_deals(s: Session, ruleset: RuleSet, what: str, error: type[ConveyorError]) -> None:
    """Refuse a version that lacks a stage deals are in: they could neither move nor be evaluated."""
    stages = {st.id for st in ruleset.stages}
    lines = []
    for _funnel, stage, count in repo.deal_stage_counts(s, ruleset.funnel):
        if stage not in stages:
            keys = repo.deal_keys_in_stage(s, ruleset.funnel, stage, limit=5)
            more = " …" if count > len(keys) else ""
            lines.append(f"stage '{stage}' is missing but {count} deal(s) are in it ({', '.join(keys)}{more})")
    if not lines:
        return
    message = (f"cannot activate this {what}: " + "; ".join(lines)
               + "; move those deals to another stage first, or keep the stage")
    if error is RuleSetInvalid:
        raise RuleSetInvalid([Problem("stages", message)])
    raise error(message)


def deal_state(deal: Deal, manager_name: str | None = None) -> DealState:
    return DealState(
        id=deal.id, key=deal.key, funnel=deal.funnel_id, stage=deal.stage, created_at=deal.created_at,
        stage_entered_at=deal.stage_entered_at, stage_visit=deal.stage_visit, activity_seq=deal.activity_seq,
        title=deal.title or "", phone=deal.phone or "", email=deal.email or "", amount=deal.amount,
        manager_id=deal.manager_id, manager_name=manager_name, last_activity_at=deal.last_activity_at,
        proposal_attached_at=deal.proposal_attached_at, proposal_opened_at=deal.proposal_opened_at,
        client_replied_at=deal.client_replied_at, payment_received_at=deal.payment_received_at,
        invoice_number=deal.invoice_number, fields=dict(deal.fields or {}))


def _field_of(deal: Deal, name: str) -> Any:
    return getattr(deal, name) if name in BUILTIN_FIELDS else (deal.fields or {}).get(name)


def _guard_failed(rs: RuleSet, stage: Any, missing: list[str]) -> GuardFailed:
    """The refusal in the owner's words: the stage's name and the fields' labels as typed in the funnel."""
    labels = []
    for name in missing:
        fd = rs.field(name)
        labels.append((fd.label.strip() if fd is not None else "") or name)  # no label: the name it was given
    return GuardFailed(stage.id, missing, stage_name=stage.name.strip() or stage.id, labels=labels)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _clean_value(fd: Any, value: Any) -> Any:
    if value is None or value == "":
        return None
    if fd.type is FieldType.NUMERIC:
        return _number(f"field '{fd.name}'", value)
    if fd.type is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidChange(f"field '{fd.name}' needs true or false, got {_shown(value)}")
        return value
    if fd.type is FieldType.SELECT:
        match = next((o for o in fd.options if isinstance(value, str) and o.lower() == value.lower()), None)
        if match is None:
            raise InvalidChange(f"field '{fd.name}': {_shown(value)} is not one of its options ({', '.join(fd.options)})")
        return match
    return _clean_text(f"field '{fd.name}'", value, MAX_TEXT)


class _NothingToDo(Exception):
    """A change found, under its lock, that it has nothing left to do: its transaction rolls back."""


def _number(what: str, value: Any, *, non_negative: bool = False) -> float:
    """A finite float within ±``MAX_NUMBER`` (and not below zero if ``non_negative``), or InvalidChange."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidChange(f"{what} needs a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not math.isfinite(number) or abs(number) > MAX_NUMBER:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise InvalidChange(f"{what} must be a finite number between -{MAX_NUMBER:.0e} and {MAX_NUMBER:.0e},"
                            f" got {shown}")
    if non_negative and number < 0:
        raise InvalidChange(f"{what} cannot be negative, got {value!r}")
    return number


def _shown(value: Any, limit: int = 40) -> str:
    """``value`` quoted for an error message: escaped (so it prints and stores anywhere) and short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _clean_text(what: str, value: Any, limit: int | None = MAX_TEXT, *, one_line: bool = False) -> str:
    """``value`` if it is text every backend stores as given, else InvalidChange naming ``what``.

    Refused (``engine.text``): non-text, more than ``limit`` characters, lone surrogates (not
    Unicode), NUL and the other C0 control characters; tab and line breaks unless ``one_line``.
    One such value stored would fail every later batch it joins (e.g. the SMS quoting it).
    """
    if not isinstance(value, str):
        raise InvalidChange(f"{what} needs text, got {_shown(value)}")
    if limit is not None and len(value) > limit:
        raise InvalidChange(f"{what} is {len(value)} characters long; the limit is {limit}")
    reason = text_refusal(value, one_line=one_line)
    if reason is not None:
        raise InvalidChange(f"{what} {reason}")
    return value


def _clean_key(key: Any) -> str:
    """An explicit deal key: text that fits its column and is not an engine-made ``D-<n>``."""
    key = str(key).strip()
    if len(key) > TEXT_LIMITS["key"]:
        raise InvalidChange(f"deal key is {len(key)} characters long; the limit is {TEXT_LIMITS['key']}")
    _clean_text("deal key", key, None, one_line=True)
    if GENERATED_KEY.match(key):
        raise InvalidChange(f"deal key '{key}' looks like a generated key (D-<number> is kept for deals"
                            " created without a key); choose another key, e.g. with a prefix of your own")
    return key


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(value)


"""``Conveyor``: the engine's public API. Every deal change, from a page, the CLI or a test, goes here.

A change, the firings it causes and their outbox rows commit in one transaction; the dispatcher
(``engine.dispatch``) carries the outbox out afterwards. Time comes from the injected clock.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine import timers
from engine.actions import MESSAGE_ACTIONS
from engine.clock import Clock, SystemClock
from engine.compile import compile_ruleset
from engine.crashpoints import crashpoint
from engine.deal import BUILTIN_FIELDS, DealState
from engine.errors import GuardFailed, InvalidChange, NotFound, TransitionNotAllowed
from engine.evaluate import Decision, RuleTrace, trace
from engine.providers import MessageProvider, RecordingProvider
from engine.ruleset import FieldType, RuleSet, StageKind
from engine.validate import _suggest, validate_document, validate_text
from storage import repositories as repo
from storage.db import make_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import Deal

#: A cascade of engine stage moves longer than this is a loop; the move is refused and recorded.
MAX_CASCADE = 10


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

    def validate(self, document: RuleSet | dict | str | bytes) -> RuleSet:
        if isinstance(document, RuleSet):
            document = document.to_document()
        known = self.known_funnels()
        if isinstance(document, str | bytes):
            return validate_text(document, known_funnels=known)
        return validate_document(document, known_funnels=known)

    def save_ruleset(self, document: RuleSet | dict | str | bytes, *, comment: str = "", author: str = "",
                     activate: bool = True) -> VersionInfo:
        """Validate and store a new immutable version (active unless ``activate=False``)."""
        ruleset = self.validate(document)
        now = self.clock.now()
        with self.session() as s:
            funnel = repo.ensure_funnel(s, ruleset.funnel, ruleset.name, now)
            row = repo.add_version(s, ruleset.funnel, ruleset.to_json(), ruleset.fingerprint(), comment, author, now)
            if activate or funnel.active_version_id is None:
                funnel.active_version_id = row.id
                timers.rearm_funnel(s, ruleset.funnel, now)  # the new rules' timers differ
            self._rulesets[row.id] = ruleset
            return self._version_info(row, funnel.active_version_id)

    def load_rules_dir(self, folder: str | Path, *, comment: str = "", author: str = "") -> list[VersionInfo]:
        """Save every ``*.json`` in ``folder``; funnels that ``start_process`` names are saved first."""
        docs = {}
        for path in sorted(Path(folder).glob("*.json")):
            try:
                docs[path] = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                validate_text(path.read_bytes(), source=str(path))  # raises with line and column
        started = {a.get("params", {}).get("funnel") for d in docs.values() for r in d.get("rules", [])
                   for a in r.get("actions", []) if isinstance(a, dict)}
        ordered = sorted(docs, key=lambda p: (docs[p].get("funnel") not in started, p.name))
        return [self.save_ruleset(docs[p], comment=comment or f"loaded from {p.name}", author=author)
                for p in ordered]

    def activate(self, funnel: str, version: int) -> VersionInfo:
        """Make an existing version the active one (rollback)."""
        with self.session() as s:
            row = repo.get_version_by_number(s, funnel, version)
            if row is None:
                raise NotFound(f"funnel '{funnel}' has no version {version}")
            f = repo.get_funnel(s, funnel)
            f.active_version_id = row.id
            timers.rearm_funnel(s, funnel, self.clock.now())  # the next tick re-derives due times
            return self._version_info(row, row.id)

    def versions(self, funnel: str) -> list[VersionInfo]:
        with self.session() as s:
            f = repo.get_funnel(s, funnel)
            if f is None:
                raise NotFound(f"no funnel '{funnel}'")
            return [self._version_info(v, f.active_version_id) for v in repo.list_versions(s, funnel)]

    def ruleset(self, funnel: str, version: int | None = None) -> RuleSet:
        """The active rule set of ``funnel`` (or a given version number)."""
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
        name = name.strip()
        if not name:
            raise InvalidChange("manager name is empty")
        with self.session() as s:
            if repo.get_manager_by_name(s, name):
                raise InvalidChange(f"a manager named '{name}' already exists")
            return repo.add_manager(s, name, phone).id

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
        with self.session() as s:
            rs, _ = self._active(s, funnel)
            stage = stage or rs.entry_stage
            st = rs.stage(stage)
            if st is None:
                raise InvalidChange(f"unknown stage '{stage}' in funnel '{funnel}'{_suggest(stage, [x.id for x in rs.stages])}")
            if key and repo.get_deal_by_key(s, key):
                raise InvalidChange(f"a deal with key '{key}' already exists")
            builtin, custom = self._clean_fields(rs, fields or {})
            builtin.setdefault("title", title)
            if st.guard:  # creating a deal straight into a guarded stage must not bypass its guard
                missing = [f for f in st.guard.required_fields
                           if _blank(builtin.get(f) if f in BUILTIN_FIELDS else custom.get(f))]
                if missing:
                    raise GuardFailed(stage, missing)
            manager_id = None
            if manager:
                m = repo.get_manager_by_name(s, manager)
                if m is None:
                    raise NotFound(f"no manager named '{manager}'")
                manager_id = m.id
            deal = repo.add_deal(s, key=key or f"tmp-{uuid.uuid4().hex}", funnel_id=funnel, stage=stage,
                                 closed=st.kind is not StageKind.OPEN, stage_visit=1, stage_entered_at=now,
                                 activity_seq=0, fields=custom, manager_id=manager_id, created_at=now,
                                 updated_at=now, **{k: v for k, v in builtin.items() if v is not None})
            if not key:
                deal.key = f"D-{deal.id}"
            repo.add_event(s, deal.id, now, "created", actor, {"stage": stage, "fields": {**builtin, **custom}})
            self._evaluate(s, deal, now, "create")
            return deal.id

    def update_deal(self, deal_id: int, fields: dict[str, Any], *, actor: str = "manager") -> None:
        """Change built-in (title, phone, email, amount) and custom fields; a manager's edit is activity."""
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
        self._stamp(deal_id, "proposal_attached", "proposal_attached_at", actor, manager_activity=True)

    def proposal_opened(self, deal_id: int) -> None:
        self._stamp(deal_id, "proposal_opened", "proposal_opened_at", "client", manager_activity=False)

    def client_replied(self, deal_id: int) -> None:
        self._stamp(deal_id, "client_replied", "client_replied_at", "client", manager_activity=False)

    def record_payment(self, deal_id: int, amount: float | None = None) -> None:
        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0):
                raise InvalidChange(f"payment amount must be a non-negative number, got {amount!r}")
            deal.payment_received_at = deal.payment_received_at or now
            return {"amount": amount}
        self._change(deal_id, "payment_received", "client", mutate, manager_activity=False)

    def record_activity(self, deal_id: int, kind: str = "call", note: str = "", *, actor: str = "manager") -> None:
        """A manager's call, note, meeting...: re-arms ``after_each_activity`` rules."""
        self._change(deal_id, "activity", actor, lambda s, d, rs, now: {"kind": kind, "note": note},
                     manager_activity=True)

    def complete_task(self, task_id: int, *, actor: str = "manager") -> None:
        """Mark a task or notification done; counts as the manager's activity on its deal."""
        with self.session() as s:
            task = repo.get_task(s, task_id)
            if task is None:
                raise NotFound(f"no task {task_id}")
            if task.status == "done":
                return
            deal_id = task.deal_id

        def mutate(s: Session, deal: Deal, rs: RuleSet, now: datetime) -> dict[str, Any]:
            t = repo.get_task(s, task_id)
            t.status, t.done_at = "done", now
            return {"task": task_id, "title": t.title}
        self._change(deal_id, "task_done", actor, mutate, manager_activity=True)

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
            rs, _ = self._active(s, deal.funnel_id)
            data = mutate(s, deal, rs, now)
            if manager_activity:
                deal.activity_seq += 1
                deal.last_activity_at = now
            deal.updated_at = now
            repo.add_event(s, deal.id, now, kind, actor, _jsonable(data))
            self._evaluate(s, deal, now, kind)

    def _enter_stage(self, deal: Deal, rs: RuleSet, stage: str, now: datetime) -> dict[str, Any]:
        target = rs.stage(stage)
        if target.guard:
            missing = [f for f in target.guard.required_fields if _blank(_field_of(deal, f))]
            if missing:
                raise GuardFailed(stage, missing)
        previous = deal.stage
        deal.stage = stage
        deal.stage_visit += 1
        deal.stage_entered_at = now
        deal.closed = target.kind is not StageKind.OPEN
        return {"from": previous, "to": stage}

    def _clean_fields(self, rs: RuleSet, fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split and type-check fields: (built-in deal attributes, custom fields)."""
        builtin, custom = {}, {}
        known = list(BUILTIN_FIELDS) + [f.name for f in rs.fields]
        for name, value in fields.items():
            if name in BUILTIN_FIELDS:
                if name == "amount":
                    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                        raise InvalidChange(f"field 'amount' needs a number, got {value!r}")
                    builtin[name] = None if value is None else float(value)
                else:
                    builtin[name] = "" if value is None else str(value)
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

        Uses the compiled rule set (``engine.compile``; same decisions as ``engine.evaluate.evaluate``)
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
        rows = [dict(deal_id=deal.id, funnel_id=deal.funnel_id, rule_id=d.rule.id, rule_name=d.rule.name,
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

        Only deals with ``next_due_at <= now`` are read (``engine.timers``): the cost follows the deals
        that became due, and an idle tick is one index probe. ``deals_examined`` counts those deals.
        """
        now = self.clock.now()
        examined = fired = queued = 0
        seen: set[int] = set()
        while True:
            with self.session() as s:
                ids = [i for i in timers.due_deal_ids(s, now, batch) if i not in seen]
                if not ids:
                    break  # (a deal re-marked due within this tick waits for the next one)
                done = repo.fired_occurrences_many(s, ids)
                plans = []
                with s.no_autoflush:  # one flush per batch: SQLAlchemy batches the deal UPDATEs
                    for deal in repo.deals_by_ids(s, ids, skip_locked=True):  # PG: see deals_by_ids
                        if deal.closed:
                            deal.next_due_at = None  # closed deals have no time rules to wait for
                            continue
                        plans.append(self._decide(s, deal, now, done[deal.id]))
                    recorded = self._record(s, plans, now, "tick")  # the whole batch in two INSERTs
                s.flush()
                crashpoint("after_evaluate_before_commit")
                fired += len(recorded)
                queued += sum(len(d.actions) for d in recorded)
                examined += len(ids)
                seen.update(ids)
        return TickReport(at=now, deals_examined=examined, rules_fired=fired, actions_queued=queued)

    # -- reading ---------------------------------------------------------------------------------
    def deal(self, deal_id: int) -> DealState:
        with self.session() as s:
            deal = repo.get_deal(s, deal_id)
            if deal is None:
                raise NotFound(f"no deal {deal_id}")
            return self._state(s, deal)

    def deal_id(self, key: str) -> int:
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


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _clean_value(fd: Any, value: Any) -> Any:
    if value is None or value == "":
        return None
    if fd.type is FieldType.NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidChange(f"field '{fd.name}' needs a number, got {value!r}")
        return float(value)
    if fd.type is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidChange(f"field '{fd.name}' needs true or false, got {value!r}")
        return value
    if fd.type is FieldType.SELECT:
        match = next((o for o in fd.options if isinstance(value, str) and o.lower() == value.lower()), None)
        if match is None:
            raise InvalidChange(f"field '{fd.name}': {value!r} is not one of its options ({', '.join(fd.options)})")
        return match
    if not isinstance(value, str):
        raise InvalidChange(f"field '{fd.name}' needs text, got {value!r}")
    return value


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


"""Reads of deals for the doors and the outbox: a deal's state, its key, a dry run, stage references.

Nothing here writes a row. The session-taking functions (``state``, ``template_values``) serve the
outbox inside its own transaction.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from engine.core.context import Context
from engine.core.deal_input import clean_text
from engine.core.explain import task_title
from engine.core.rulesets import RuleSets
from engine.document.ruleset import RuleSet
from engine.errors import NotFound
from engine.rules.deal import DealState
from engine.rules.evaluators.reference import RuleTrace, trace
from storage import deliveries
from storage import repositories as repo
from storage.db import make_engine, read_transaction, sqlite_path
from storage.models import Deal
from storage.readonly import read_only_engine

__all__ = [
    "NEIGHBOUR_CONNECT_SECONDS",
    "ActionInfo",
    "Queries",
    "TaskInfo",
    "deal_state",
    "stored_funnel_ids",
]

#: How long ``stored_funnel_ids`` waits for a PostgreSQL server (unless the URL says otherwise).
NEIGHBOUR_CONNECT_SECONDS = 3


@dataclass(frozen=True)
class TaskInfo:
    id: int
    deal_id: int
    kind: str
    title: str
    status: str


@dataclass(frozen=True)
class ActionInfo:
    """One outbox row as ``conveyor actions`` lists it."""

    id: int
    status: str
    action: str
    deal_id: int
    deal_key: str
    rule_id: str
    attempts: int
    next_attempt_at: datetime | None
    updated_at: datetime | None
    last_error: str | None
    #: A message's own state (recorded, sending, sent, delivered, failed, dead) and the gateway's id.
    message: str = ""
    gateway_id: str = ""
    #: The manager a message to a manager is for ("" for a firing's action, which goes to its deal's client).
    manager: str = ""


class Queries:
    """Read-only questions about deals."""

    def __init__(self, context: Context, rulesets: RuleSets):
        self._context = context
        self._rulesets = rulesets
        #: Makes a deal's tracking link to what an event carries: (deal id, event) → URL
        #: (``engine.core.links``; set by ``Conveyor``).
        self.link_maker: Callable[[int, str], str] | None = None

    def deal(self, deal_id: int) -> DealState:
        with self._context.transaction() as s:
            deal = repo.get_deal(s, deal_id)
            if deal is None:
                raise NotFound(f"no deal {deal_id}")
            return self.state(s, deal)

    def deal_id(self, key: str) -> int:
        clean_text("deal key", key, None, one_line=True)
        # A read: on SQLite a deferred BEGIN, so looking a key up never queues for the writer's lock.
        with self._context.read_transaction() as s:
            deal_id = repo.deal_id_by_key(s, key)
            if deal_id is None:
                raise NotFound(f"no deal with key '{key}'")
            return deal_id

    def any_deals(self) -> bool:
        with self._context.transaction() as s:
            return bool(repo.list_deals(s, limit=1))

    def next_deal_number(self) -> int:
        """One more than the highest deal id: a number no deal's generated key has taken yet."""
        with self._context.transaction() as s:
            return repo.next_deal_number(s)

    def firing_count(self, *, since: datetime | None = None, rule_id: str | None = None) -> int:
        """Rule firings recorded (since ``since``; of ``rule_id`` only)."""
        with self._context.transaction() as s:
            return repo.firing_count(s, since=since, rule_id=rule_id)

    def tasks(self, deal_id: int, *, status: str | None = None) -> list[TaskInfo]:
        """The deal's tasks and notifications (``status``: only those, e.g. ``"open"``)."""
        with self._context.transaction() as s:
            return [
                TaskInfo(t.id, t.deal_id, t.kind, task_title(t.title, t.titles), t.status)
                for t in repo.list_tasks(s, status=status, deal_id=deal_id)
            ]

    def actions(
        self, statuses: list[str], *, deal_id: int | None = None, limit: int = 50
    ) -> list[ActionInfo]:
        """Outbox rows in ``statuses`` (of one deal), newest first, as ``repositories.list_outbox`` orders them.

        A status may also be a message's own state (``recorded``, ``sent``, ``delivered``); ``failed`` and
        ``dead`` include messages the gateway accepted and later reported failed.
        """
        wanted = set(statuses)
        by_message = wanted & {"recorded", "sent", "delivered", "failed", "dead"}
        outbox_statuses = sorted(
            (wanted - {"recorded", "sent", "delivered"}) | ({"done"} if by_message else set())
        )
        with self._context.transaction() as s:
            log = repo.list_outbox_log(
                s,
                statuses=outbox_statuses,
                deal_id=deal_id,
                limit=limit * 4 if by_message else limit,
            )
            msgs = deliveries.messages_for_outbox(
                s, [a.id for a, _f, _d in log if a.kind == "message"]
            )
            rows = [
                (a, f, d)
                for a, f, d in log
                if (a.status in wanted and a.status != "done")
                or (a.status == "done" and "done" in wanted)
                or (a.id in msgs and msgs[a.id].status in by_message)
            ][:limit]
            managers = repo.manager_names(s)
            return [
                ActionInfo(
                    a.id,
                    a.status,
                    a.action,
                    a.deal_id or 0,
                    d.key if d is not None else "",
                    # A message to a manager has no firing: the rule it tells of, or its action.
                    f.rule_id if f is not None else str((a.params or {}).get("rule") or a.action),
                    a.attempts,
                    a.next_attempt_at,
                    a.updated_at,
                    a.last_error,
                    msgs[a.id].status if a.id in msgs else "",
                    (msgs[a.id].provider_ref or "") if a.id in msgs else "",
                    managers.get(a.manager_id, "") if a.manager_id is not None else "",
                )
                for a, f, d in rows
            ]

    def dry_run(
        self, deal: int | DealState, at: datetime | None = None, ruleset: RuleSet | None = None
    ) -> list[RuleTrace]:
        """Which rules would fire for ``deal`` at ``at`` and why; executes and records nothing."""
        state = self.deal(deal) if isinstance(deal, int) else deal
        # A draft (e.g. from the builder) has not been through the validator yet: business-rules would
        # resolve its names with getattr, so it is validated here like any save.
        rs = (
            self._rulesets.validate(ruleset)
            if ruleset is not None
            else self._rulesets.get(state.funnel)
        )
        return trace(rs, state, at or self._context.clock.now())

    def stage_references(
        self, funnel: str, stage: str, ruleset: RuleSet | None = None
    ) -> list[str]:
        """What refers to a stage (rules, transitions, guards, deals): deleting it is refused while any do."""
        rs = ruleset or self._rulesets.get(funnel)
        refs = [
            f"rule '{r.name or r.id}' (rules[{i}])"
            for i, r in enumerate(rs.rules)
            if r.refers_to_stage(stage)
        ]
        refs += [
            f"transition {t.from_} → {t.to}" for t in rs.transitions if stage in (t.from_, t.to)
        ]
        if rs.initial_stage == stage:
            refs.append("the funnel's initial stage")
        with self._context.transaction() as s:
            deals = repo.deals_referencing_stage(s, funnel, stage)
        if deals:
            refs.append(
                f"{len(deals)} deal(s): "
                + ", ".join(d.key for d in deals[:10])
                + (" …" if len(deals) > 10 else "")
            )
        return refs

    # -- inside a caller's transaction (the outbox) ----------------------------------------------
    def state(self, s: Session, deal: Deal) -> DealState:
        manager = repo.manager_names(s).get(deal.manager_id) if deal.manager_id else None
        return deal_state(deal, manager)

    def template_values(self, s: Session, deal: Deal) -> dict[str, Any]:
        """What a message or task template of ``deal`` may quote, under its funnel's active version."""
        rs, _ = self._rulesets.active(s, deal.funnel_id)
        stage = rs.stage(deal.stage)
        values = self.state(s, deal).template_values(stage.name if stage else deal.stage, rs.name)
        if self.link_maker is not None:  # signed only if a template names it (render calls it)
            for event in rs.linked_events():
                if event.link is not None:
                    values[event.link.placeholder] = functools.partial(
                        self.link_maker, deal.id, event.name
                    )
        return values


def deal_state(deal: Deal, manager_name: str | None = None) -> DealState:
    return DealState(
        id=deal.id,
        key=deal.key,
        funnel=deal.funnel_id,
        stage=deal.stage,
        created_at=deal.created_at,
        stage_entered_at=deal.stage_entered_at,
        stage_visit=deal.stage_visit,
        activity_seq=deal.activity_seq,
        title=deal.title or "",
        phone=deal.phone or "",
        email=deal.email or "",
        amount=deal.amount,
        manager_id=deal.manager_id,
        manager_name=manager_name,
        last_activity_at=deal.last_activity_at,
        signals=dict(deal.signals or {}),
        invoice_number=deal.invoice_number,
        fields=dict(deal.fields or {}),
    )


def stored_funnel_ids(url: str) -> set[str]:
    """Funnel ids saved in the database at ``url``; empty if it does not exist or cannot be read.

    Read-only on purpose (``conveyor validate``): it never creates a database or a file and runs no
    migration; a SQLite file is opened ``mode=ro``, a PostgreSQL server waited for a few seconds only.
    """
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = sqlite_path(url)
            if path is None or not os.path.isfile(path):
                return set()
            engine = read_only_engine(url)
        else:
            if "connect_timeout" not in parsed.query:
                parsed = parsed.update_query_dict(
                    {"connect_timeout": str(NEIGHBOUR_CONNECT_SECONDS)}
                )
            engine = make_engine(parsed.render_as_string(hide_password=False))
        try:
            with read_transaction(engine) as s:
                return {f.id for f in repo.list_funnels(s)}
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - no database (or no schema yet) only means fewer known funnels
        return set()

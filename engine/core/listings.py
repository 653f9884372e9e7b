"""The HTTP API's reads, each checked against the actor's role: a deal with its open tasks and
firings, cursor pages of tasks and actions, funnels and their versions.

Cursors are the last id of a page (``storage.pages``): stable order, nothing repeated or skipped when
rows are added between pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.core.access import Actor, Permission, require
from engine.core.context import Context
from engine.core.deal_input import MAX_SHORT_TEXT, clean_text
from engine.core.queries import Queries, deal_state
from engine.core.rulesets import RuleSets, VersionInfo
from engine.errors import InvalidChange, NotFound
from storage import pages
from storage import repositories as repo

__all__ = ["ActionRow", "DealView", "FiringRow", "Listings", "MAX_PAGE", "TaskRow"]

MAX_PAGE = 200
TASK_STATUSES = ("open", "done", "cancelled")
ACTION_STATUSES = ("pending", "sending", "failed", "dead", "done")


@dataclass(frozen=True)
class TaskRow:
    id: int
    deal: str
    kind: str
    title: str
    priority: str
    status: str
    manager: str | None
    due_at: datetime | None
    created_at: datetime
    done_at: datetime | None
    #: Why a cancelled task was closed ("moved_to:<stage id>"); None for open and done tasks.
    closed_reason: str | None = None


@dataclass(frozen=True)
class FiringRow:
    rule_id: str
    rule_name: str
    fired_at: datetime
    trigger: str
    values: dict[str, Any]


@dataclass(frozen=True)
class ActionRow:
    id: int
    deal: str
    rule_id: str
    action: str
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    #: The manager a message to a manager is for (notify_manager, an urgent task, the digest).
    manager: str | None = None


@dataclass(frozen=True)
class DealView:
    key: str
    funnel: str
    stage: str
    stage_name: str
    closed: bool
    title: str
    phone: str
    email: str
    amount: float | None
    manager: str | None
    fields: dict[str, Any]
    events: dict[str, Any]
    invoice_number: str | None
    created_at: datetime
    updated_at: datetime
    open_tasks: list[TaskRow]
    firings: list[FiringRow]


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidChange(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    return limit


class Listings:
    def __init__(self, context: Context, rulesets: RuleSets, queries: Queries):
        self._context = context
        self._rulesets = rulesets
        self._queries = queries

    def deal_id(
        self, key: str, *, actor: Actor | str, permission: Permission = Permission.READ_DEALS
    ) -> int:
        """The id of the deal ``key``, for an actor who may do ``permission`` (checked first, so a
        refused role never learns whether the deal exists)."""
        require(actor, permission)
        return self._queries.deal_id(key)

    def task(self, task_id: int, *, actor: Actor | str) -> TaskRow:
        require(actor, Permission.READ_TASKS)
        with self._context.read_transaction() as s:
            rows = pages.tasks_page(s, after=task_id - 1, limit=1)
            if not rows or rows[0][0].id != task_id:
                raise NotFound(f"no task {task_id}")
            return _task(*rows[0])

    def action(self, action_id: int, *, actor: Actor | str) -> ActionRow:
        require(actor, Permission.READ_ACTIONS)
        with self._context.read_transaction() as s:
            rows = pages.actions_page(s, after=action_id - 1, limit=1)
            if not rows or rows[0][0].id != action_id:
                raise NotFound(f"no action {action_id}")
            return _action(*rows[0])

    def declared_events(self, funnel: str, *, actor: Actor | str) -> list[dict[str, Any]]:
        """What ``record_event`` accepts on ``funnel``'s deals: name, label, who causes it, fields it sets."""
        require(actor, Permission.READ_DEALS)
        rs = self._rulesets.get(funnel)
        return [
            {"name": e.name, "label": e.label, "by": e.by.value, "fields": dict(e.fields)}
            for e in rs.events
        ]

    def deal(self, key: str, *, actor: Actor | str) -> DealView:
        require(actor, Permission.READ_DEALS)
        clean_text("deal key", key, 100, one_line=True)
        with self._context.read_transaction() as s:
            rows = repo.read_deal_view(s, key)
            if rows is None:
                raise NotFound(f"no deal with key '{key}'")
            deal, manager = rows.deal, rows.manager_name
            state = deal_state(deal, manager)
            stage_name = deal.stage
            if rows.active_version_id is not None:
                try:
                    stage = self._rulesets.by_version_id(s, rows.active_version_id).stage(
                        deal.stage
                    )
                    stage_name = stage.name if stage else deal.stage
                except NotFound:
                    pass
            tasks = [_task(t, deal.key, t.manager) for t in rows.open_tasks]
            firings = [
                FiringRow(f.rule_id, f.rule_name, f.fired_at, f.trigger, dict(f.fired_values or {}))
                for f in reversed(rows.firings)
            ]
            return DealView(
                deal.key,
                deal.funnel_id,
                deal.stage,
                stage_name,
                bool(deal.closed),
                state.title,
                state.phone,
                state.email,
                state.amount,
                manager,
                state.fields,
                state.signals,
                deal.invoice_number,
                deal.created_at,
                deal.updated_at,
                tasks,
                firings,
            )

    def tasks(
        self,
        *,
        actor: Actor | str,
        after: int = 0,
        limit: int = 50,
        status: str | None = None,
        manager: str | None = None,
        due_before: datetime | None = None,
    ) -> list[TaskRow]:
        require(actor, Permission.READ_TASKS)
        if status is not None and status not in TASK_STATUSES:
            raise InvalidChange(f"status must be one of {', '.join(TASK_STATUSES)}, got {status!r}")
        if manager is not None:
            clean_text("manager", manager, MAX_SHORT_TEXT, one_line=True)
        with self._context.read_transaction() as s:
            return [
                _task(t, key, name)
                for t, key, name in pages.tasks_page(
                    s,
                    after=after,
                    limit=_limit(limit),
                    status=status,
                    manager=manager,
                    due_before=due_before,
                )
            ]

    def actions(
        self,
        *,
        actor: Actor | str,
        after: int = 0,
        limit: int = 50,
        statuses: list[str] | None = None,
        deal: str | None = None,
    ) -> list[ActionRow]:
        require(actor, Permission.READ_ACTIONS)
        for st in statuses or []:
            if st not in ACTION_STATUSES:
                raise InvalidChange(
                    f"status must be one of {', '.join(ACTION_STATUSES)}, got {st!r}"
                )
        deal_id = self._queries.deal_id(deal) if deal else None
        with self._context.read_transaction() as s:
            return [
                _action(*row)
                for row in pages.actions_page(
                    s, after=after, limit=_limit(limit), statuses=statuses, deal_id=deal_id
                )
            ]

    def may_read_status(self, *, actor: Actor | str) -> None:
        """Refuses (``Forbidden``) an actor who may not read the service's health (``GET /status``)."""
        require(actor, Permission.READ_STATUS)

    def funnels(self, *, actor: Actor | str) -> list[tuple[str, str, int | None]]:
        """(id, name, active version number) of every funnel, by id."""
        require(actor, Permission.READ_FUNNELS)
        out = []
        for funnel, name in self._rulesets.funnels():
            active = next((v.version for v in self._rulesets.versions(funnel) if v.active), None)
            out.append((funnel, name, active))
        return out

    def versions(self, funnel: str, *, actor: Actor | str) -> list[VersionInfo]:
        require(actor, Permission.READ_FUNNELS)
        return self._rulesets.versions(funnel)

    def export(self, funnel: str, fmt: str, version: int | None, *, actor: Actor | str) -> str:
        require(actor, Permission.READ_FUNNELS)
        if fmt not in ("conveyor", "business-rules"):
            raise InvalidChange(
                f"unknown export format '{fmt}' (use 'conveyor' or 'business-rules')"
            )
        return self._rulesets.export(funnel, fmt, version)


def _task(t: Any, deal_key: str, manager: str | None) -> TaskRow:
    return TaskRow(
        t.id,
        deal_key,
        t.kind,
        t.title,
        t.priority,
        t.status,
        manager,
        t.due_at,
        t.created_at,
        t.done_at,
        t.closed_reason,
    )


def _action(a: Any, f: Any, deal_key: str | None, manager: str | None) -> ActionRow:
    return ActionRow(
        a.id,
        deal_key or "",
        # A message to a manager belongs to no firing: the rule it tells of, or its action (a digest).
        f.rule_id if f is not None else str((a.params or {}).get("rule") or a.action),
        a.action,
        a.kind,
        a.status,
        a.attempts,
        a.next_attempt_at,
        a.last_error,
        a.created_at,
        a.updated_at,
        manager if a.manager_id is not None and f is None else None,
    )

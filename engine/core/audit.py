"""The audit trail: who changed what, written in the transaction of the change, never edited.

``record`` is what a service calls inside its own transaction; ``Audit`` (``Conveyor.audit``) reads the
trail for the builder's page and its CSV export. There is no command that updates or deletes an entry.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.core.access import Actor, ActorKind, Permission, Role, actor_of, require
from engine.core.context import Context
from engine.core.deal_input import jsonable
from storage import people_repositories as people

__all__ = ["Audit", "AuditEntry", "deal_change", "deal_change_rows", "engine_actor", "record"]

ENGINE = "engine"


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor_kind: str
    actor: str
    kind: str
    deal_id: int | None
    subject: str
    detail: dict[str, Any]


def engine_actor(rule: str | None) -> Actor:
    """The engine acting for a rule: ``engine:<rule id>`` in the trail."""
    return Actor(ActorKind.ENGINE, ENGINE if not rule else f"{ENGINE}:{rule}", Role.OWNER)


def record(
    s: Session,
    actor: Actor | str,
    kind: str,
    at: datetime,
    *,
    deal_id: int | None = None,
    subject: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """One entry, in the caller's transaction (so it commits, or rolls back, with the change)."""
    who = actor_of(actor)
    people.add_audit(
        s,
        at=at,
        actor_kind=who.kind.value,
        actor=who.label[:200],
        kind=kind,
        deal_id=deal_id,
        subject=subject[:300],
        detail=jsonable(detail or {}),
    )


class Audit:
    """Reads of the trail (every role that reads may read it)."""

    def __init__(self, context: Context):
        self._context = context

    def entries(
        self,
        *,
        actor_name: str | None = None,
        deal_id: int | None = None,
        kind: str | None = None,
        limit: int | None = 1000,
        actor: Actor | str = "system",
    ) -> list[AuditEntry]:
        """Newest first; filtered by who (as the trail names them), deal and kind."""
        require(actor, Permission.READ_AUDIT)
        with self._context.read_transaction() as s:
            return [
                AuditEntry(
                    r.at, r.actor_kind, r.actor, r.kind, r.deal_id, r.subject, dict(r.detail or {})
                )
                for r in people.list_audit(
                    s, actor=actor_name, deal_id=deal_id, kind=kind, limit=limit
                )
            ]

    def actors(self, *, actor: Actor | str = "system") -> list[str]:
        require(actor, Permission.READ_AUDIT)
        with self._context.read_transaction() as s:
            return people.audit_actors(s)

    def kinds(self, *, actor: Actor | str = "system") -> list[str]:
        require(actor, Permission.READ_AUDIT)
        with self._context.read_transaction() as s:
            return people.audit_kinds(s)

    def csv(self, entries: list[AuditEntry]) -> str:
        """The entries as CSV (UTC instants in ISO 8601; the detail as JSON)."""
        import json

        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["at", "actor_kind", "actor", "kind", "deal_id", "subject", "detail"])
        for e in entries:
            w.writerow(
                [
                    e.at.isoformat(),
                    e.actor_kind,
                    _cell(e.actor),
                    e.kind,
                    "" if e.deal_id is None else e.deal_id,
                    _cell(e.subject),
                    _cell(json.dumps(e.detail, ensure_ascii=False, sort_keys=True)),
                ]
            )
        return out.getvalue()


def _cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


#: The trail's kind for each kind of deal history event (others keep their own name).
DEAL_KINDS = {
    "created": "deal_created",
    "updated": "deal_edited",
    "stage_moved": "deal_moved",
    "task_done": "task_completed",
    "event": "event_recorded",
    "activity": "activity_recorded",
    "manager_changed": "deal_reassigned",
}


def deal_change(
    s: Session,
    deal: Any,
    at: datetime,
    kind: str,
    actor: Actor | str,
    data: dict[str, Any],
    *,
    rule: str | None = None,
) -> None:
    """One change of a deal: a line of its history (``deal_events``) and an entry of the trail, in the
    change's transaction. ``rule``: the engine made it, for this rule."""
    from storage import repositories as repo

    event, entry = deal_change_rows(deal, at, kind, actor, data, rule=rule)
    repo.add_event(s, **event)
    people.add_audit(s, **entry)


def deal_change_rows(
    deal: Any,
    at: datetime,
    kind: str,
    actor: Actor | str,
    data: dict[str, Any],
    *,
    rule: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What ``deal_change`` writes: the ``deal_events`` row and the ``audit_log`` row (without ids), for
    a caller that writes them together with the deal (``repo.save_change``)."""
    who = engine_actor(rule) if rule is not None else actor_of(actor)
    payload = jsonable(data)  # once, for both rows
    event = {
        "deal_id": deal.id,
        "at": at,
        "kind": kind,
        "actor": "engine" if rule is not None else who.label,
        "data": payload,
    }
    entry = {
        "at": at,
        "actor_kind": who.kind.value,
        "actor": who.label[:200],
        "kind": DEAL_KINDS.get(kind, kind),
        "deal_id": deal.id,
        "subject": f"{deal.key} {deal.title or ''}".strip()[:300],
        "detail": payload,
    }
    return event, entry

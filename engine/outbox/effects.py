"""What each internal action does to the database, applied inside the dispatcher's transaction.

Every function returns the resolved parameters (what actually happened: the task's due time, the
manager picked, the invoice number), which the outbox row keeps as its ``result``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from engine.clock import format_instant
from engine.document.ruleset import StageKind
from engine.document.template import render
from engine.errors import ConveyorError
from storage import repositories as repo
from storage.models import Deal, Firing, OutboxAction

if TYPE_CHECKING:
    from engine.core.conveyor import Conveyor


class ActionFailed(ConveyorError):
    """An action could not be applied. ``permanent`` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def template_values(conveyor: Conveyor, s: Session, deal: Deal) -> dict[str, Any]:
    rs, _ = conveyor._active(s, deal.funnel_id)
    stage = rs.stage(deal.stage)
    return conveyor._state(s, deal).template_values(stage.name if stage else deal.stage, rs.name)


def apply(conveyor: Conveyor, s: Session, row: OutboxAction, firing: Firing, now: datetime) -> dict[str, Any]:
    deal = repo.get_deal(s, row.deal_id, for_update=True)
    handler = _HANDLERS.get(row.action)
    if handler is None:
        raise ActionFailed(f"unknown internal action '{row.action}'", permanent=True)
    return handler(conveyor, s, deal, row, firing, now)


def _manager_name(s: Session, deal: Deal) -> str | None:
    return repo.manager_names(s).get(deal.manager_id) if deal.manager_id else None


def _assign_manager(conveyor: Conveyor, s: Session, deal: Deal, row: OutboxAction, firing: Firing,
                    now: datetime) -> dict:
    if deal.manager_id is not None:
        return {"manager": _manager_name(s, deal), "kept": True}
    manager = repo.next_manager_round_robin(s)
    if manager is None:
        raise ActionFailed("no active manager to assign (add one, or re-activate one)")
    manager.assign_seq = repo.next_assign_seq(s)
    manager.last_assigned_at = now
    deal.manager_id = manager.id
    repo.add_event(s, deal.id, now, "manager_assigned", "engine", {"manager": manager.name, "rule": firing.rule_id})
    return {"manager": manager.name}


def _task(kind: str, text_param: str):
    def handler(conveyor: Conveyor, s: Session, deal: Deal, row: OutboxAction, firing: Firing,
                now: datetime) -> dict:
        params = row.params or {}
        text = render(params[text_param], template_values(conveyor, s, deal))
        priority = params.get("priority", "normal")
        if kind == "task":
            due = now + timedelta(hours=float(params["due_in_hours"]))
        else:
            due = now
        repo.add_task(s, deal_id=deal.id, manager_id=deal.manager_id, kind=kind, title=text, priority=priority,
                      status="open", due_at=due, created_at=now, outbox_id=row.id)
        out = {text_param: text, "priority": priority, "due_at": format_instant(due), "manager": _manager_name(s, deal)}
        if kind == "task":
            out["due_in_hours"] = params["due_in_hours"]
        return out
    return handler


def _bounded_chain(firing: Firing) -> list[str]:
    """The rules that led to this firing; refused (permanently) once longer than ``MAX_CASCADE``.

    Stage moves and started processes are changes that are evaluated again, so both carry the chain:
    a rule that starts its own funnel's process would otherwise create deals without end.
    """
    from engine.core.conveyor import MAX_CASCADE

    chain = list(firing.chain or [])
    if len(chain) > MAX_CASCADE:
        loop = " → ".join(chain)
        raise ActionFailed(f"cascade of stage moves and started processes stopped after {MAX_CASCADE} steps;"
                           f" rules in the loop: {loop}", permanent=True)
    return chain


def _move_to_stage(conveyor: Conveyor, s: Session, deal: Deal, row: OutboxAction, firing: Firing,
             now: datetime) -> dict:
    params = row.params or {}
    rs, _ = conveyor._active(s, deal.funnel_id)
    to_stage = params["to_stage"]
    if rs.stage(to_stage) is None:
        raise ActionFailed(f"stage '{to_stage}' no longer exists in funnel '{rs.funnel}'", permanent=True)
    if deal.stage == to_stage:
        return {"to_stage": to_stage, "from_stage": deal.stage, "skipped": "already there"}
    chain = _bounded_chain(firing)
    conveyor._catch_up(s, deal, now)  # what fell due on the old stage fires before it is left
    try:
        moved = conveyor._enter_stage(deal, rs, to_stage, now)
    except ConveyorError as exc:  # a failed entry guard: the owner may fill the fields, so retry
        raise ActionFailed(str(exc)) from None
    repo.add_event(s, deal.id, now, "stage_moved", "engine", {**moved, "rule": firing.rule_id})
    conveyor._evaluate(s, deal, now, "stage_moved", chain=chain)
    return {"to_stage": to_stage, "from_stage": moved["from"]}


def _generate_invoice(conveyor: Conveyor, s: Session, deal: Deal, row: OutboxAction, firing: Firing,
             now: datetime) -> dict:
    params = row.params or {}
    amount = params.get("amount")
    amount = float(deal.amount or 0) if amount is None else float(amount)
    seq = repo.next_invoice_seq(s)
    number = f"INV-{now.year}-{seq:05d}"
    repo.add_invoice(s, number=number, seq=seq, deal_id=deal.id, amount=amount, created_at=now,
                     outbox_id=row.id)
    deal.invoice_number = number
    repo.add_event(s, deal.id, now, "invoice_generated", "engine", {"number": number, "amount": amount})
    return {"number": number, "amount": amount}


def _start_process(conveyor: Conveyor, s: Session, deal: Deal, row: OutboxAction, firing: Firing,
             now: datetime) -> dict:
    params = row.params or {}
    funnel = params["funnel"]
    try:
        rs, _ = conveyor._active(s, funnel)
    except ConveyorError:
        raise ActionFailed(f"funnel '{funnel}' does not exist (load its rule set)") from None
    chain = _bounded_chain(firing)
    title = render(params["title"], template_values(conveyor, s, deal)) if params.get("title") else deal.title
    from engine.core.conveyor import TEXT_LIMITS

    title = _fit(title or "", TEXT_LIMITS["title"])  # a rendered template may outgrow the column
    stage = rs.stage(rs.entry_stage)
    # A second process of the same funnel (the deal re-entered the stage) gets its own key.
    key, n = _child_key(deal.key, funnel, "", TEXT_LIMITS["key"]), 1
    while repo.get_deal_by_key(s, key) is not None:
        n += 1
        key = _child_key(deal.key, funnel, f"#{n}", TEXT_LIMITS["key"])
    child = repo.add_deal(s, key=key, funnel_id=funnel, stage=stage.id,
                          closed=stage.kind is not StageKind.OPEN, stage_visit=1, stage_entered_at=now,
                          activity_seq=0, fields={}, manager_id=deal.manager_id, created_at=now, updated_at=now,
                          title=title, phone=deal.phone, email=deal.email, amount=deal.amount,
                          parent_deal_id=deal.id)
    repo.add_event(s, child.id, now, "created", "engine", {"stage": stage.id, "parent": deal.key})
    repo.add_event(s, deal.id, now, "process_started", "engine", {"funnel": funnel, "deal": child.key})
    conveyor._evaluate(s, child, now, "create", chain=chain)
    return {"funnel": funnel, "deal": child.key, "title": title}


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _child_key(parent: str, funnel: str, suffix: str, limit: int) -> str:
    """``<parent key>/<funnel><suffix>``, within the key column: chained processes would outgrow it,
    so a long parent key keeps its start and end (the uniqueness loop settles any clash)."""
    tail = f"/{funnel}{suffix}"
    room = limit - len(tail)
    if len(parent) > room:
        head = max(room // 2, 0)
        end = max(room - head - 1, 0)
        parent = parent[:head] + "…" + parent[len(parent) - end:]
    return parent + tail


_HANDLERS = {
    "assign_manager": _assign_manager,
    "create_task": _task("task", "title"),
    "notify_manager": _task("notification", "text"),
    "move_to_stage": _move_to_stage,
    "generate_invoice": _generate_invoice,
    "start_process": _start_process,
}

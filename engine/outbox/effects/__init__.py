"""What each internal action does to the database: one module per action, registered here.

``apply`` runs the row's effect inside the dispatcher's transaction, on its deal locked; the result
(the task's due time, the manager picked, the invoice number) is kept as the row's ``result``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.outbox.effects import (
    assign_manager,
    create_task,
    generate_invoice,
    move_to_stage,
    notify_manager,
    start_process,
)
from engine.outbox.effects.base import Core, Effect
from engine.outbox.errors import ActionFailed
from storage import repositories as repo
from storage.models import Firing, OutboxAction

__all__ = ["EFFECTS", "ActionFailed", "Core", "Effect", "apply"]

#: Internal action name → its effect (``engine.rules.actions`` declares the same names).
EFFECTS: dict[str, Effect] = {
    "assign_manager": assign_manager.apply,
    "create_task": create_task.apply,
    "notify_manager": notify_manager.apply,
    "move_to_stage": move_to_stage.apply,
    "generate_invoice": generate_invoice.apply,
    "start_process": start_process.apply,
}


def apply(
    core: Core, s: Session, row: OutboxAction, firing: Firing, now: datetime
) -> dict[str, Any]:
    deal = repo.get_deal(s, row.deal_id, for_update=True) if row.deal_id is not None else None
    if deal is None:
        raise ActionFailed(f"deal {row.deal_id} is gone", permanent=True)
    effect = EFFECTS.get(row.action)
    if effect is None:
        raise ActionFailed(f"unknown internal action '{row.action}'", permanent=True)
    return effect(core, s, deal, row, firing, now)

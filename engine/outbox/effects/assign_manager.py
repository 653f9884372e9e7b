"""``assign_manager``: the next active manager in round-robin order, unless the deal has one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.core.audit import deal_change
from engine.outbox.effects.base import Core, manager_name
from engine.outbox.errors import ActionFailed
from storage import repositories as repo
from storage.models import Deal, Firing, OutboxAction


def apply(
    core: Core, s: Session, deal: Deal, row: OutboxAction, firing: Firing, now: datetime
) -> dict[str, Any]:
    if deal.manager_id is not None:
        return {"manager": manager_name(s, deal), "kept": True}
    manager = repo.next_manager_round_robin(s)
    if manager is None:
        raise ActionFailed("no active manager to assign (add one, or re-activate one)")
    manager.assign_seq = repo.next_assign_seq(s)
    manager.last_assigned_at = now
    deal.manager_id = manager.id
    deal_change(
        s,
        deal,
        now,
        "manager_assigned",
        "engine",
        {"manager": manager.name, "rule": firing.rule_id},
        rule=firing.rule_id,
    )
    return {"manager": manager.name}

"""``move_to_stage``: an engine stage move; what fell due on the old stage fires before it is left."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.core.audit import deal_change
from engine.core.evaluation import enter_stage
from engine.errors import ConveyorError
from engine.outbox.effects.base import Core, bounded_chain
from engine.outbox.errors import ActionFailed
from storage.models import Deal, Firing, OutboxAction


def apply(
    core: Core, s: Session, deal: Deal, row: OutboxAction, firing: Firing, now: datetime
) -> dict[str, Any]:
    params = row.params or {}
    rs, _ = core.rulesets.active(s, deal.funnel_id)
    to_stage = params["to_stage"]
    if rs.stage(to_stage) is None:
        raise ActionFailed(
            f"stage '{to_stage}' no longer exists in funnel '{rs.funnel}'", permanent=True
        )
    if deal.stage == to_stage:
        return {"to_stage": to_stage, "from_stage": deal.stage, "skipped": "already there"}
    chain = bounded_chain(firing)
    core.evaluation.catch_up(s, deal, now)
    try:
        moved = enter_stage(s, deal, rs, to_stage, now)
    except ConveyorError as exc:  # a failed entry guard: the owner may fill the fields, so retry
        raise ActionFailed(str(exc)) from None
    deal_change(
        s,
        deal,
        now,
        "stage_moved",
        "engine",
        {**moved, "rule": firing.rule_id},
        rule=firing.rule_id,
    )
    core.evaluation.evaluate(s, deal, now, "stage_moved", chain=chain)
    return {"to_stage": to_stage, "from_stage": moved["from"]}

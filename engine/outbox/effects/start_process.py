"""``start_process``: a child deal in another funnel's entry stage, evaluated at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.core.audit import deal_change
from engine.core.deal_input import TEXT_LIMITS
from engine.document.ruleset import StageKind
from engine.document.template import render
from engine.errors import ConveyorError
from engine.outbox.effects.base import Core, bounded_chain, message_language
from engine.outbox.errors import ActionFailed
from storage import repositories as repo
from storage.models import Deal, Firing, OutboxAction


def apply(
    core: Core, s: Session, deal: Deal, row: OutboxAction, firing: Firing, now: datetime
) -> dict[str, Any]:
    params = row.params or {}
    funnel = params["funnel"]
    try:
        rs, _ = core.rulesets.active(s, funnel)
    except ConveyorError:
        raise ActionFailed(f"funnel '{funnel}' does not exist (load its rule set)") from None
    chain = bounded_chain(firing)
    title = (
        render(
            params["title"], core.queries.template_values(s, deal), message_language(core, s, deal)
        )
        if params.get("title")
        else deal.title
    )
    title = _fit(title or "", TEXT_LIMITS["title"])  # a rendered template may outgrow the column
    stage = rs.stage(rs.entry_stage)
    if stage is None:  # the validator makes the entry stage one of the stages
        raise ActionFailed(f"funnel '{funnel}' has no entry stage", permanent=True)
    # A second process of the same funnel (the deal re-entered the stage) gets its own key.
    key, n = _child_key(deal.key, funnel, "", TEXT_LIMITS["key"]), 1
    while repo.get_deal_by_key(s, key) is not None:
        n += 1
        key = _child_key(deal.key, funnel, f"#{n}", TEXT_LIMITS["key"])
    child = repo.add_deal(
        s,
        key=key,
        funnel_id=funnel,
        stage=stage.id,
        closed=stage.kind is not StageKind.OPEN,
        stage_visit=1,
        stage_entered_at=now,
        activity_seq=0,
        fields={},
        manager_id=deal.manager_id,
        created_at=now,
        updated_at=now,
        title=title,
        phone=deal.phone,
        email=deal.email,
        amount=deal.amount,
        parent_deal_id=deal.id,
    )
    deal_change(
        s,
        child,
        now,
        "created",
        "engine",
        {"stage": stage.id, "parent": deal.key},
        rule=firing.rule_id,
    )
    deal_change(
        s,
        deal,
        now,
        "process_started",
        "engine",
        {"funnel": funnel, "deal": child.key},
        rule=firing.rule_id,
    )
    core.evaluation.evaluate(s, child, now, "create", chain=chain)
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
        parent = parent[:head] + "…" + parent[len(parent) - end :]
    return parent + tail

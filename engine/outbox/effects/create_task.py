"""``create_task``: a task for the deal's manager, due ``due_in_hours`` after the action runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine.clock import format_instant
from engine.document.template import render
from engine.outbox.effects.base import Core, manager_name, message_language, task_place
from storage import repositories as repo
from storage.models import Deal, Firing, OutboxAction


def apply(
    core: Core, s: Session, deal: Deal, row: OutboxAction, firing: Firing, now: datetime
) -> dict[str, Any]:
    params = row.params or {}
    title = render(
        params["title"], core.queries.template_values(s, deal), message_language(core, s, deal)
    )
    priority = params.get("priority", "normal")
    place = task_place(core, s, deal, row, firing)
    due = now + timedelta(hours=float(params["due_in_hours"]))
    repo.add_task(
        s,
        deal_id=deal.id,
        manager_id=deal.manager_id,
        kind="task",
        title=title,
        priority=priority,
        status="cancelled" if place.cancelled else "open",
        stage=place.stage,
        stage_visit=place.visit,
        closed_reason=place.cancelled,
        done_at=now if place.cancelled else None,
        due_at=due,
        created_at=now,
        outbox_id=row.id,
    )
    return {
        "title": title,
        "priority": priority,
        "due_at": format_instant(due),
        "manager": manager_name(s, deal),
        "due_in_hours": params["due_in_hours"],
    }

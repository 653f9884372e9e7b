"""``create_task``: a task for the deal's manager, due ``due_in_hours`` after the action runs, or
``due_in_working_hours`` working hours of the funnel's calendar after it (Friday 17:00 + 2 working
hours, 09:00–18:00 on weekdays: Monday 10:00); a high-priority one is also told to the manager on
their channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.clock import format_instant
from engine.document.template import render, render_each
from engine.i18n import N_
from engine.outbox import manager_messages
from engine.outbox.effects.base import Core, due_after, manager_name, message_language, task_place
from storage import repositories as repo
from storage.models import Deal, Firing, OutboxAction


def apply(
    core: Core, s: Session, deal: Deal, row: OutboxAction, firing: Firing, now: datetime
) -> dict[str, Any]:
    params = row.params or {}
    values = core.queries.template_values(s, deal)
    title = render(params["title"], values, message_language(core, s, deal))
    priority = params.get("priority", "normal")
    place = task_place(core, s, deal, row, firing)
    due = due_after(
        core,
        s,
        firing,
        now,
        hours=params.get("due_in_hours"),
        working_hours=params.get("due_in_working_hours"),
    )
    repo.add_task(
        s,
        deal_id=deal.id,
        manager_id=deal.manager_id,
        kind="task",
        title=title,
        titles=render_each(params["title"], values),  # each manager reads it in their language
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
    result: dict[str, Any] = {
        "title": title,
        "priority": priority,
        "due_at": format_instant(due),
        "manager": manager_name(s, deal),
        **{k: params[k] for k in ("due_in_hours", "due_in_working_hours") if k in params},
    }
    if priority == "high":  # an urgent task reaches the manager where they are (unless cancelled)
        result["told"] = not place.cancelled and manager_messages.tell(
            s,
            row=row,
            rule=firing.rule_id,
            deal=deal,
            headline=N_("Urgent task"),
            text=title,
            now=now,
        )
    return result

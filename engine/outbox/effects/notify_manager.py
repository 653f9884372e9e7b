"""``notify_manager``: a notification for the deal's manager, told on their channel at once, or after
``delay_hours`` or ``due_in_working_hours`` of the funnel's calendar (the message is not sent before)."""

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
    text = render(params["text"], values, message_language(core, s, deal))
    priority = params.get("priority", "normal")
    place = task_place(core, s, deal, row, firing)
    # Told at once, or after a delay in calendar or working hours (the message waits until then).
    due = due_after(
        core,
        s,
        firing,
        now,
        hours=params.get("delay_hours"),
        working_hours=params.get("due_in_working_hours"),
    )
    repo.add_task(
        s,
        deal_id=deal.id,
        manager_id=deal.manager_id,
        kind="notification",
        title=text,
        titles=render_each(params["text"], values),  # each manager reads it in their language
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
    told = not place.cancelled and manager_messages.tell(
        s,
        row=row,
        rule=firing.rule_id,
        deal=deal,
        headline=N_("Notification"),
        text=text,
        now=now,
        not_before=due,
    )
    return {
        "text": text,
        "priority": priority,
        "due_at": format_instant(due),
        "manager": manager_name(s, deal),
        "told": told,
        **{k: params[k] for k in ("delay_hours", "due_in_working_hours") if k in params},
    }

"""How the manager pages say things: times in the display zone, durations, events, actions, reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine import clock
from engine.document.ruleset import RuleSet

__all__ = [
    "ACTION_STATUSES",
    "HIGH_PRIORITIES",
    "action_summary",
    "describe_event",
    "display_zone",
    "event_label",
    "event_text",
    "hours_text",
    "instant_or_none",
    "number_text",
    "reason_text",
    "short",
    "stage_name",
    "to_display",
]

HIGH_PRIORITIES = ("high",)  # engine.actions.PRIORITIES: low, normal, high


ACTION_STATUSES = ("pending", "sending", "done", "failed", "dead")


def display_zone() -> ZoneInfo:
    """The zone times are shown in: ``engine.clock.display_zone`` (``CONVEYOR_TZ``, default Europe/Kyiv;
    an unknown name falls back to Europe/Kyiv with a logged warning, so a page never fails over it)."""
    return clock.display_zone()


def to_display(dt: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC instant as text in the display zone ('' for none); ``engine.clock.for_display``."""
    return clock.for_display(dt, fmt)


def hours_text(hours: float | None) -> str:
    """48.5 → '2 d 0 h', 5.2 → '5 h 12 min': how long something has been waiting."""
    if hours is None:
        return ""
    minutes = int(round(abs(hours) * 60))
    d, rem = divmod(minutes, 24 * 60)
    h, m = divmod(rem, 60)
    text = f"{d} d {h} h" if d else f"{h} h {m} min" if h else f"{m} min"
    return f"-{text}" if hours < 0 else text


def describe_event(rs: RuleSet, kind: str, data: dict[str, Any]) -> str:
    """A deal event as one readable line (stage ids shown by the names the owner gave them)."""
    if kind == "created":
        text = f"created in {stage_name(rs, data.get('stage', ''))}"
        return text + (f" (from {data['parent']})" if data.get("parent") else "")
    if kind == "stage_moved":
        text = f"{stage_name(rs, data.get('from', ''))} → {stage_name(rs, data.get('to', ''))}"
        return text + (f" by rule {data['rule']}" if data.get("rule") else "")
    if kind == "updated":
        parts = [
            f"{k}: {short(v.get('from')) or '—'} → {short(v.get('to')) or '—'}"
            for k, v in data.items()
            if isinstance(v, dict)
        ]
        return "; ".join(parts) or "no change"
    if kind == "task_done":
        return f"done: {data.get('title', '')}"
    if kind == "activity":
        return f"{data.get('kind', 'activity')}" + (f": {data['note']}" if data.get("note") else "")
    if (
        kind == "event" or rs.event(kind) is not None
    ):  # "event"; before migration 0003, the event's name
        return event_text(rs, data.get("name", kind), data)
    if kind == "manager_assigned":
        return f"assigned to {data.get('manager', '')}"
    if kind == "invoice_generated":
        return f"invoice {data.get('number', '')} for {data.get('amount', 0):,.2f}"
    if kind == "process_started":
        return f"started {data.get('funnel', '')} as {data.get('deal', '')}"
    return ", ".join(f"{k}: {short(v)}" for k, v in data.items())


def event_label(rs: RuleSet, name: str) -> str:
    """A declared event as the owner named it ("Client opened the proposal"); its name if undeclared now."""
    ev = rs.event(name)
    return (ev.label.strip() if ev is not None else "") or name


def event_text(rs: RuleSet, name: str, data: dict[str, Any]) -> str:
    """One recorded event: its label, what it carried, and when it happened if reported late."""
    text = event_label(rs, name)
    carried = data.get("data") if isinstance(data.get("data"), dict) else {}
    if carried:
        text += " (" + ", ".join(f"{k}: {number_text(v)}" for k, v in carried.items()) + ")"
    if data.get("at"):
        text += f", happened {to_display(instant_or_none(data['at']))}"
    return text


def number_text(value: Any) -> str:
    """A carried amount as the pages show it: 1234.5 → '1,234.50'; other values shortened."""
    return (
        f"{value:,.2f}"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else short(value)
    )


def instant_or_none(text: Any) -> datetime | None:
    """An ISO instant recorded in an event's data, or None if it is not one."""
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def action_summary(action: str, params: dict[str, Any]) -> str:
    """What an action did (its result) or will do (its params), in a few words."""
    if action == "assign_manager":
        return f"manager {params['manager']}" if params.get("manager") else "assign a manager"
    if action in ("create_task", "notify_manager"):
        text = params.get("title") or params.get("text") or ""
        due = (
            f" (due in {params['due_in_hours']} h)"
            if params.get("due_in_hours") is not None
            else ""
        )
        return f"{text}{due}"
    if action == "move_to_stage":
        return f"move to {params.get('to_stage', '')}" + (
            " (already there)" if params.get("skipped") else ""
        )
    if action == "generate_invoice":
        return f"invoice {params['number']}" if params.get("number") else "generate an invoice"
    if action == "start_process":
        return f"start {params.get('funnel', '')}" + (
            f" → {params['deal']}" if params.get("deal") else ""
        )
    if action in ("send_sms", "send_message", "send_email"):
        to = f" to {params['to']}" if params.get("to") else ""
        channel = params.get("channel") or ("email" if action == "send_email" else "sms")
        text = params.get("subject") or params.get("text", "")
        if isinstance(text, dict):  # a template given per language, not yet rendered
            text = " / ".join(f"{k}: {v}" for k, v in text.items())
        return f"{channel}{to}: {short(text, 60)}"
    return ", ".join(f"{k}={short(v)}" for k, v in params.items())


def reason_text(values: dict[str, Any]) -> str:
    """A firing's recorded condition values: 'stage = proposal, hours_in_stage = 48.2'."""
    return ", ".join(f"{k} = {short(v)}" for k, v in values.items())


def stage_name(rs: RuleSet, stage_id: str) -> str:
    """A stage as the owner named it; its id if the rule set no longer has it."""
    st = rs.stage(stage_id)
    return st.name if st else stage_id


def short(value: Any, width: int = 40) -> str:
    """A value in at most ``width`` characters (floats without noise, lists joined)."""
    if isinstance(value, float):
        text = f"{value:.1f}" if value != int(value) else str(int(value))
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value) or "(none)"
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"

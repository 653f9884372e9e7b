"""What a person reads about a deal, in the funnel's own words: why a rule fired, the deal's history,
the state of its tasks, what an action did. Labels (fields, events, stages), never ids.

The builder, the CLI and the HTTP API all take their sentences from here, each through ``_()``, so a
deal reads the same from every door and in every language.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine import clock
from engine.core.evaluation import MOVED_TO
from engine.document.conditions import Condition, leaves
from engine.document.labels import label
from engine.document.ruleset import Rule, RuleSet
from engine.document.template import localized
from engine.i18n import N_, _, current_language, format_number, ngettext

__all__ = [
    "MOVED_TO",
    "action_summary",
    "describe_event",
    "event_label",
    "event_text",
    "field_label",
    "kind_label",
    "short",
    "stage_name",
    "task_status_text",
    "task_title",
    "variable_label",
    "why_lines",
    "why_text",
]


#: The built-in deal fields as an edit names them.
_BUILTIN_FIELDS = {
    "title": N_("Title"),
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "amount": N_("Amount"),
}
_BUILTIN_VARIABLES = {
    "stage": N_("Stage"),
    "hours_in_stage": N_("Hours in stage"),
    "hours_since_last_activity": N_("Hours since last manager activity"),
    "hours_since_created": N_("Hours since created"),
    "has_manager": N_("Has a manager"),
    "amount": N_("Amount"),
}

#: What a threshold needs, per operator: "needed ≥ 48".
_OPERATORS = {
    "equal_to": "=",
    "not_equal_to": "≠",
    "greater_than": ">",
    "greater_than_or_equal_to": "≥",
    "less_than": "<",
    "less_than_or_equal_to": "≤",
    "equal_to_case_insensitive": "=",
    "contains": N_("contains"),
    "does_not_contain": N_("does not contain"),
    "starts_with": N_("starts with"),
    "ends_with": N_("ends with"),
    "matches_regex": N_("matches"),
    "non_empty": N_("filled in"),
}
#: History kinds as a list of events names them.
_KINDS = {
    "created": N_("Created"),
    "stage_moved": N_("Moved"),
    "updated": N_("Edited"),
    "task_done": N_("Task done"),
    "activity": N_("Activity"),
    "event": N_("Event"),
    "manager_assigned": N_("Manager assigned"),
    "manager_changed": N_("Manager changed"),
    "invoice_generated": N_("Invoice"),
    "process_started": N_("Process started"),
}
_ACTIVITIES = {"call": N_("Call"), "note": N_("Note"), "meeting": N_("Meeting")}


# -- names ---------------------------------------------------------------------------------------
def stage_name(rs: RuleSet, stage_id: str) -> str:
    st = rs.stage(stage_id)
    return (label(st.name).strip() if st else "") or stage_id


def field_label(rs: RuleSet, name: str) -> str:
    """A deal field as the owner labelled it ("Counterparty: tax id"); the built-ins' own words."""
    if name in _BUILTIN_FIELDS:
        return _(_BUILTIN_FIELDS[name])
    fd = rs.field(name)
    return (label(fd.label).strip() if fd is not None else "") or name


def event_label(rs: RuleSet, name: str) -> str:
    """A declared event as the owner named it ("Client opened the proposal"); its name if undeclared now."""
    ev = rs.event(name)
    return (label(ev.label).strip() if ev is not None else "") or name


def variable_label(rs: RuleSet, name: str) -> str:
    """A rule variable as a sentence names it: "Hours since proposal attached", "Budget confirmed"."""
    if name in _BUILTIN_VARIABLES:
        return _(_BUILTIN_VARIABLES[name])
    if rs.field(name) is not None:
        return field_label(rs, name)
    if rs.event(name) is not None:
        return event_label(rs, name)
    if name.startswith("hours_since_") and rs.event(name[len("hours_since_") :]) is not None:
        return _("Hours since {event}").format(
            event=_lower_first(event_label(rs, name[len("hours_since_") :]))
        )
    return name


def kind_label(kind: str) -> str:
    """A history entry's kind in words ("Moved"); an unknown kind as it is, spaced."""
    return _(_KINDS[kind]) if kind in _KINDS else kind.replace("_", " ").capitalize()


def _lower_first(text: str) -> str:
    # "Proposal attached" reads "hours since proposal attached"; "CRM sync" keeps its capitals.
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


# -- why a rule fired ----------------------------------------------------------------------------
def why_lines(rs: RuleSet, rule: Rule | None, values: dict[str, Any]) -> list[str]:
    """Each value a firing read, with its label and what the rule needed of it:
    ``Hours since proposal attached: 57 (needed ≥ 48)``, ``Client opened the proposal: yes``."""
    leaves_of: dict[str, list[Condition]] = {}
    if rule is not None:
        for _path, leaf in leaves(rule.conditions):
            if isinstance(leaf.name, str):
                leaves_of.setdefault(leaf.name, []).append(leaf)
    out = []
    for name, value in values.items():
        label = variable_label(rs, name)
        if name == "stage":
            out.append(f"{label}: {stage_name(rs, str(value))}")
            continue
        needed = [n for n in (_needed(rs, leaf) for leaf in leaves_of.get(name, [])) if n]
        text = f"{label}: {_value(value)}"
        if needed and not isinstance(value, bool):
            text += " " + _("(needed {condition})").format(condition=_(" and ").join(needed))
        out.append(text)
    return out


def why_text(rs: RuleSet, rule: Rule | None, values: dict[str, Any]) -> str:
    """``why_lines`` as one text, one value a line (a table cell wraps at the line breaks)."""
    return "\n".join(why_lines(rs, rule, values))


def _needed(rs: RuleSet, leaf: Condition) -> str:
    op = leaf.operator if isinstance(leaf.operator, str) else ""
    if op not in _OPERATORS:
        return ""
    word = _OPERATORS[op]
    sign = word if word in ("=", "≠", ">", "≥", "<", "≤") else _(word)
    if op == "non_empty":
        return sign
    value = stage_name(rs, leaf.value) if leaf.name == "stage" else _value(leaf.value)
    return f"{sign} {value}"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int | float):
        return format_number(round(value, 1))
    if value is None or value == "":
        return "—"
    return short(value)


# -- history ---------------------------------------------------------------------------------------
def describe_event(rs: RuleSet, kind: str, data: dict[str, Any]) -> str:
    """A deal event as one readable line: "Moved to Contract", "Tax id: abc → 32855961"."""
    if kind == "created":
        text = _("Created in {stage}").format(stage=stage_name(rs, data.get("stage", "")))
        return text + (
            " " + _("(from {deal})").format(deal=data["parent"]) if data.get("parent") else ""
        )
    if kind == "stage_moved":
        text = _("Moved to {stage}").format(stage=stage_name(rs, data.get("to", "")))
        if data.get("from"):
            text += " " + _("(from {stage})").format(stage=stage_name(rs, data["from"]))
        if data.get("rule"):
            rule = rs.rule(data["rule"])
            text += ", " + _("by rule “{rule}”").format(
                rule=(label(rule.name).strip() if rule is not None else "") or data["rule"]
            )
        if data.get("cancelled_tasks"):
            n = int(data["cancelled_tasks"])
            text += "; " + ngettext(
                "{n} open task cancelled", "{n} open tasks cancelled", n
            ).format(n=n)
        return text
    if kind == "updated":
        parts = [
            f"{field_label(rs, k)}: {short(v.get('from')) or '—'} → {short(v.get('to')) or '—'}"
            for k, v in data.items()
            if isinstance(v, dict)
        ]
        return "; ".join(parts) or _("no change")
    if kind == "task_done":
        return _("Done: {title}").format(title=data.get("title", ""))
    if kind == "activity":
        what = data.get("kind", "activity")
        said = _(_ACTIVITIES[what]) if what in _ACTIVITIES else str(what)
        return said + (f": {data['note']}" if data.get("note") else "")
    if (
        kind == "event" or rs.event(kind) is not None
    ):  # "event"; before migration 0003, the event's name
        return event_text(rs, data.get("name", kind), data)
    if kind == "manager_assigned":
        return _("Assigned to {manager}").format(manager=data.get("manager", ""))
    if kind == "manager_changed":
        text = _("Manager: {before} → {after}").format(
            before=data.get("from") or "—", after=data.get("to", "")
        )
        if data.get("tasks"):
            n = int(data["tasks"])
            text += "; " + ngettext(
                "{n} open task goes with the deal", "{n} open tasks go with the deal", n
            ).format(n=n)
        return text
    if kind == "invoice_generated":
        return _("Invoice {number} for {amount}").format(
            number=data.get("number", ""), amount=format_number(data.get("amount") or 0)
        )
    if kind == "process_started":
        return _("Started {funnel} as {deal}").format(
            funnel=data.get("funnel", ""), deal=data.get("deal", "")
        )
    return ", ".join(f"{k}: {short(v)}" for k, v in data.items())


def event_text(rs: RuleSet, name: str, data: dict[str, Any]) -> str:
    """One recorded event: its label, what it carried, and when it happened if reported late."""
    text = event_label(rs, name)
    carried = data.get("data") if isinstance(data.get("data"), dict) else {}
    if carried:
        text += " (" + ", ".join(f"{k}: {_number(v)}" for k, v in carried.items()) + ")"
    if data.get("at"):
        text += ", " + _("happened {at}").format(at=clock.for_display(_instant(data["at"])))
    return text


# -- tasks and actions -------------------------------------------------------------------------------
def task_title(title: str, titles: dict[str, str] | None) -> str:
    """A task's title for the reader: in their interface language when the rule wrote it per language
    (``{"uk": …, "en": …}``; the closest language, as ``localized`` picks it), else the one text the
    owner wrote (the funnel's own words are not translated)."""
    return localized(titles, current_language()) if titles else title


def task_status_text(rs: RuleSet | None, status: str, closed_reason: str | None = None) -> str:
    """ "open", "done", or why it was closed: "cancelled: deal moved to Contract"."""
    if status == "cancelled":
        if closed_reason and closed_reason.startswith(MOVED_TO):
            stage = closed_reason[len(MOVED_TO) :]
            return _("cancelled: deal moved to {stage}").format(
                stage=stage_name(rs, stage) if rs is not None else stage
            )
        return _("cancelled")
    return {"open": _("open"), "done": _("done")}.get(status, status)


def action_summary(action: str, params: dict[str, Any], rs: RuleSet | None = None) -> str:
    """What an action did (its result) or will do (its params), in a few words (stage names from ``rs``)."""
    if action == "assign_manager":
        return (
            _("manager {name}").format(name=params["manager"])
            if params.get("manager")
            else _("assign a manager")
        )
    if action in ("create_task", "notify_manager"):
        text = params.get("title") or params.get("text") or ""
        if isinstance(text, dict):
            text = " / ".join(f"{k}: {v}" for k, v in text.items())
        due = (
            " " + _("(due in {hours} h)").format(hours=format_number(params["due_in_hours"]))
            if params.get("due_in_hours") is not None
            else " "
            + _("(due in {hours} working h)").format(
                hours=format_number(params["due_in_working_hours"])
            )
            if params.get("due_in_working_hours") is not None
            else " " + _("(in {hours} h)").format(hours=format_number(params["delay_hours"]))
            if params.get("delay_hours") is not None
            else ""
        )
        return f"{text}{due}"
    if action == "move_to_stage":
        to = str(params.get("to_stage", ""))
        return _("move to {stage}").format(stage=stage_name(rs, to) if rs is not None else to) + (
            " " + _("(already there)") if params.get("skipped") else ""
        )
    if action == "generate_invoice":
        return (
            _("invoice {number}").format(number=params["number"])
            if params.get("number")
            else _("generate an invoice")
        )
    if action == "start_process":
        return _("start {funnel}").format(funnel=params.get("funnel", "")) + (
            f" → {params['deal']}" if params.get("deal") else ""
        )
    if action in ("send_sms", "send_message", "send_email"):
        to = " " + _("to {to}").format(to=params["to"]) if params.get("to") else ""
        channel = params.get("channel") or ("email" if action == "send_email" else "sms")
        text = params.get("subject") or params.get("text", "")
        if isinstance(text, dict):  # a template given per language, not yet rendered
            text = " / ".join(f"{k}: {v}" for k, v in text.items())
        return f"{channel}{to}: {short(text, 60)}"
    return ", ".join(f"{k}={short(v)}" for k, v in params.items())


# -- small helpers -------------------------------------------------------------------------------------
def short(value: Any, width: int = 40) -> str:
    if isinstance(value, float):
        text = f"{value:.1f}" if value != int(value) else str(int(value))
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value) or _("(none)")
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _number(value: Any) -> str:
    return (
        format_number(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else short(value)
    )


def _instant(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None

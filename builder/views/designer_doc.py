"""The Designer's session keys and its edits of the funnel's draft: what the canvas, the stage panel
and the rule editor share."""

from __future__ import annotations

import copy
from typing import Any

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from builder import state
from builder.canvas.edits import (
    EditRefused,
)
from builder.canvas.layout import free_rule_slot
from builder.components import (
    RuleData,
)
from engine.document.ids import unique_id
from engine.document.labels import label
from engine.document.ruleset import RuleSet
from engine.document.summary import Vocabulary
from engine.document.validate import rule_data
from engine.errors import ConveyorError, RuleSetInvalid
from engine.i18n import _

__all__ = [
    "AUTOSAVE",
    "CANVAS_MSG",
    "CANVAS_REV",
    "CANVAS_SEQ",
    "KINDS",
    "PICK",
    "PICK_NEXT",
    "apply_edit",
    "new_rule",
    "rule_data_for",
]

PICK = "designer_pick"


PICK_NEXT = (
    "designer_pick_next"  # a pick requested after the picker exists; applied on the next run
)


CANVAS_REV = "designer_canvas_rev"  # bumped after every handled gesture: the canvas redraws from the document


CANVAS_SEQ = (
    "designer_canvas_seq"  # the last gesture handled (a trigger is reported once, this is a guard)
)


CANVAS_MSG = "designer_canvas_msg"  # (level, text) shown above the canvas on the next run


AUTOSAVE = "designer_autosave"


KINDS = ["open", "won", "lost"]


def rule_data_for(doc: dict[str, Any]) -> RuleData:
    """Choices for widgets; custom fields count only when the field list itself is valid."""
    try:
        data = rule_data(RuleSet.model_validate({**doc, "rules": [], "transitions": []}))
    except Exception:  # noqa: BLE001 - a broken field list falls back to the built-in variables
        data = rule_data(None)
    stages = doc.get("stages", [])
    funnels = state.funnel_names()
    return RuleData(
        data,
        [s["id"] for s in stages],
        {s["id"]: label(s["name"]) for s in stages},
        list(funnels),
        [f.get("name") for f in doc.get("fields", []) if isinstance(f, dict)],
        [e.get("name") for e in doc.get("events", []) if isinstance(e, dict)],
        {
            item.get("name"): item.get("label")
            for item in [*doc.get("fields", []), *doc.get("events", [])]
            if isinstance(item, dict) and item.get("label")
        },
        Vocabulary.of(doc, funnels),
    )


def apply_edit(funnel: str, doc: dict[str, Any], edit: Any, pick: str | None = None) -> None:
    """Apply a canvas edit to a copy of the draft; keep it only if the validator accepts the result.

    With "Save canvas changes at once" on and nothing else unsaved, the result is saved as a new version
    at once (``Conveyor.save_ruleset`` through ``state.save_draft``, comment = what was done); otherwise it
    becomes the draft. A refused edit changes nothing and says why. Reruns the page.
    """
    st.session_state[CANVAS_REV] = st.session_state.get(CANVAS_REV, 0) + 1
    new = copy.deepcopy(doc)
    try:
        summary = edit(new)
    except EditRefused as exc:
        st.session_state[CANVAS_MSG] = ("error", _("Nothing changed: {reason}.").format(reason=exc))
        st.rerun()
    if isinstance(summary, tuple):
        summary = summary[-1]
    problems = state.draft_problems(new)
    if problems and len(problems) > len(state.draft_problems(doc)):
        st.session_state[CANVAS_MSG] = (
            "error",
            _("Nothing changed — {change} would make the funnel invalid:").format(change=summary)
            + "\n\n"
            + "\n".join(f"- `{p.path}`: {p.message}" for p in problems[:5]),
        )
        st.rerun()
    if st.session_state.get(AUTOSAVE, True) and not state.is_dirty(funnel) and not problems:
        state.set_draft(funnel, new)
        try:
            info = state.save_draft(funnel, summary)
        except RuleSetInvalid as exc:
            state.set_draft(funnel, doc)
            st.session_state[CANVAS_MSG] = (
                "error",
                _("Not saved — {change}:").format(change=summary)
                + "\n\n"
                + "\n".join(f"- `{p.path}`: {p.message}" for p in exc.problems[:5]),
            )
        except (ConveyorError, SQLAlchemyError) as exc:
            state.set_draft(funnel, doc)
            st.session_state[CANVAS_MSG] = (
                "error",
                _("Not saved — {change}: {error}").format(
                    change=summary, error=state.error_message(exc, _("The new version"))
                ),
            )
        else:
            st.session_state[CANVAS_MSG] = (
                "success",
                _("{change} — saved as version {version}.").format(
                    change=summary, version=info.version
                ),
            )
    else:
        state.set_draft(funnel, new)
        state.bump(funnel)
        st.session_state[CANVAS_MSG] = (
            "success",
            _("{change} — in the draft; Save version above to make it active.").format(
                change=summary
            ),
        )
    if pick is not None:
        st.session_state[PICK_NEXT] = pick
    st.rerun()


def new_rule(doc: dict[str, Any], sid: str | None, name: str | None = None) -> str:
    """Append a starter rule (for stage ``sid``) named ``name``; its id comes from the name, unique."""
    stage_names = {s["id"]: label(s["name"]) for s in doc.get("stages", [])}
    if not (name or "").strip():
        taken_names = {label(r.get("name")) for r in doc.get("rules", [])}
        base = (
            _("{stage}: reminder").format(stage=stage_names[sid])
            if sid in stage_names
            else _("New rule")
        )
        name, n = base, 2
        while name in taken_names:
            name, n = f"{base} {n}", n + 1
    name = str(name).strip()
    rid = unique_id(name, {r["id"] for r in doc.get("rules", [])}, "rule")
    conds: list[dict[str, Any]] = [
        {"name": "hours_in_stage", "operator": "greater_than_or_equal_to", "value": 24}
    ]
    if sid:
        conds.insert(0, {"name": "stage", "operator": "equal_to", "value": sid})
    rule: dict[str, Any] = {
        "id": rid,
        "name": name,
        "enabled": True,
        "repeat": "once_per_stage_visit",
        "conditions": {"all": conds},
        "actions": [
            {
                "name": "notify_manager",
                "params": {"text": _("Deal {title} needs attention"), "priority": "normal"},
            }
        ],
    }
    doc.setdefault("rules", []).append(rule)
    rule["position"] = free_rule_slot(doc, rule)  # next to its stage, never on another node
    return rid

"""The rule editor's "add a common condition" panel: the shapes an owner means, picked directly.

"Budget is not answered", "any of Budget, Authority or Need is “no”", "within 24 h of entering":
the panel builds each with ``engine.document.shapes`` (plain business-rules JSON) and shows how it
will read (``engine.document.summary``) before it is added to the rule.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from pydantic import ValidationError

from builder.components import RuleData, labels_key
from engine.document import shapes
from engine.document.labels import label
from engine.document.ruleset import FieldDef, FieldType
from engine.document.summary import describe_conditions
from engine.i18n import _

__all__ = ["common_condition_adder"]

SHAPES = ("unanswered", "answered", "any_unanswered", "any_is", "within", "after")


def _shape_labels() -> dict[str, str]:
    return {
        "unanswered": _("a field is not answered yet"),
        "answered": _("a field is answered"),
        "any_unanswered": _("any of several fields is not answered"),
        "any_is": _("any of several fields is … (e.g. “no”)"),
        "within": _("within N hours of …"),
        "after": _("N hours after …"),
    }


def _fields(doc: dict[str, Any]) -> list[FieldDef]:
    out = []
    for raw in doc.get("fields") or []:
        try:
            out.append(FieldDef.model_validate(raw))
        except ValidationError:
            continue  # a broken field definition: its problem is shown where the field is edited
    return out


def _moments(doc: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """What "hours since" can count from: label → (variable, event that must have happened)."""
    out: dict[str, tuple[str, str | None]] = {
        _("entering the stage"): ("hours_in_stage", None),
        _("the last manager activity"): ("hours_since_last_activity", None),
        _("the deal being created"): ("hours_since_created", None),
    }
    for e in doc.get("events") or []:
        if isinstance(e, dict) and e.get("name"):
            out[label(e.get("label")) or str(e["name"])] = (
                f"hours_since_{e['name']}",
                str(e["name"]),
            )
    return out


def common_condition_adder(doc: dict[str, Any], rd: RuleData, key: str) -> dict[str, Any] | None:
    """The panel; returns the condition to add (business-rules JSON) when the owner clicks Add."""
    fields = _fields(doc)
    answerable = [
        f for f in fields if f.type is FieldType.TEXT or (f.type is FieldType.SELECT and f.options)
    ]
    selects = [f for f in fields if f.type is FieldType.SELECT and f.options]
    by_name = {f.name: f for f in fields}
    labels = _shape_labels()
    with st.container(border=True):
        st.markdown("**" + _("Add a common condition") + "**")
        cols = st.columns([2.2, 3])
        shape = cols[0].selectbox(
            _("Condition"), list(SHAPES), format_func=labels.get, key=f"{key}:shape"
        )
        node: dict[str, Any] | None = None
        problem: str | None = None
        with cols[1]:
            if shape in ("answered", "unanswered"):
                names = [f.name for f in answerable]
                if not names:
                    problem = _("This funnel has no text or choice fields to answer.")
                else:
                    name = st.selectbox(
                        _("Field"),
                        names,
                        format_func=lambda n: label(by_name[n].label) or n,
                        key=f"{key}:field:{labels_key(names)}",
                    )
                    f = by_name[name]
                    node = shapes.answered(f) if shape == "answered" else shapes.unanswered(f)
            elif shape in ("any_unanswered", "any_is"):
                pool = answerable if shape == "any_unanswered" else selects
                names = [f.name for f in pool]
                chosen = st.multiselect(
                    _("Fields"),
                    names,
                    default=names[:3],
                    format_func=lambda n: label(by_name[n].label) or n,
                    key=f"{key}:fields:{shape}:{labels_key(names)}",
                )
                picked = [by_name[n] for n in chosen]
                if not picked:
                    problem = _("Choose at least one field.")
                elif shape == "any_unanswered":
                    node = shapes.any_unanswered(picked)
                else:
                    common = [o for o in picked[0].options if all(o in f.options for f in picked)]
                    if not common:
                        problem = _("These fields have no answer in common.")
                    else:
                        value = st.selectbox(
                            _("Answer"),
                            common,
                            index=common.index("no") if "no" in common else 0,
                            key=f"{key}:value:{labels_key(common)}",
                        )
                        node = shapes.any_is(picked, value)
            else:
                moments = _moments(doc)
                inner = st.columns([1, 2])
                hours = inner[0].number_input(
                    _("Hours"), min_value=1.0, value=24.0, step=1.0, format="%g", key=f"{key}:hours"
                )
                moment = inner[1].selectbox(
                    _("After") if shape == "after" else _("Of"),
                    list(moments),
                    key=f"{key}:moment:{labels_key(moments)}",
                )
                variable, event = moments[moment]
                node = (
                    shapes.within_hours(variable, hours, event)
                    if shape == "within"
                    else shapes.after_hours(variable, hours)
                )
        foot = st.columns([4, 1.2])
        if problem:
            foot[0].caption(problem)
        elif node is not None:
            foot[0].caption(
                _("Reads: {words}").format(words=describe_conditions(node, rd.vocabulary))
            )
        if foot[1].button(_("Add"), key=f"{key}:add", disabled=node is None):
            return node
    return None

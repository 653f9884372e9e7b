"""The rule editor's action list: one box per action, its parameter widgets from the action's declared
params (``RuleData.actions``, i.e. business-rules' ``export_rule_data``)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from builder.components import RuleData
from builder.text import labels_key, problems_under
from engine.errors import Problem
from engine.i18n import _

__all__ = ["actions_editor"]


def _param_widget(rd: RuleData, action: str, decl: dict[str, Any], value: Any, key: str) -> Any:
    name, ftype = decl["name"], decl["fieldType"]
    label = _(decl.get("label", name)) + (
        "" if decl.get("required", True) else " " + _("(optional)")
    )
    if ftype == "numeric":
        if not decl.get("required", True):
            raw = st.text_input(
                label,
                value="" if value is None else str(value),
                key=key,
                help=_("Leave empty to use the default"),
            )
            try:
                return (
                    None
                    if raw.strip() == ""
                    else (int(float(raw)) if float(raw).is_integer() else float(raw))
                )
            except ValueError:
                return raw  # the validator names the field and says a number is needed
        start = value if isinstance(value, int | float) and not isinstance(value, bool) else 0
        out = st.number_input(
            label, value=float(start), min_value=0.0, step=1.0, format="%g", key=key
        )
        return int(out) if float(out).is_integer() else out
    if ftype == "select":
        options = list(decl.get("options") or [])
        fmt = str
        if action == "move_to_stage" and name == "to_stage":
            options, fmt = list(rd.stage_ids), rd.stage_label
        elif action == "start_process" and name == "funnel":
            options = list(rd.funnels)
        if value is not None and value not in options:
            options = [*options, value]
        if not decl.get("required", True):
            options = ["", *options] if "" not in options else options
        if value is not None:
            default = value
        else:  # an absent optional param shows "(default)" so viewing a rule never changes it
            default = "" if not decl.get("required", True) else (options[0] if options else "")
        idx = options.index(default) if default in options else 0
        out = st.selectbox(
            label,
            options,
            index=idx,
            key=f"{key}:{labels_key(map(fmt, options))}",
            format_func=lambda v: fmt(v) if v else _("(default)"),
        )
        return out if out != "" else None
    hint = (
        _(
            "You may use {title}, {manager_name}, {amount}, {invoice_number} and the funnel's field "
            "names in braces"
        )
        if name in ("title", "text", "subject")
        else None
    )
    if isinstance(value, dict):
        # A template given per language ({"uk": …, "en": …}): one box each, so editing keeps them all.
        return {
            lang: st.text_input(
                f"{label} ({lang})",
                value=text if isinstance(text, str) else "",
                key=f"{key}:{lang}",
                help=hint,
            )
            for lang, text in value.items()
        }
    out = st.text_input(label, value=value if isinstance(value, str) else "", key=key, help=hint)
    # An optional text left empty is absent (its default applies), not an empty template.
    return out if (out or decl.get("required", True)) else None


def actions_editor(
    actions: list[dict[str, Any]], rd: RuleData, key: str, path: str, problems: list[Problem]
) -> tuple[list[dict[str, Any]], str | None]:
    """The rule's action list; parameter widgets come from each action's declared params."""
    out: list[dict[str, Any]] = []
    change = None
    names = list(rd.actions)
    for i, action in enumerate(actions):
        apath = f"{path}[{i}]"
        with st.container(border=True):
            top = st.columns([0.35, 5, 0.5])
            top[0].markdown(
                f"<div style='padding-top:0.45rem;color:#6B7280'>{i + 1}</div>",
                unsafe_allow_html=True,
            )
            current = action.get("name")
            opts = names if current in names else [*names, str(current)]
            name = top[1].selectbox(
                _("Action"),
                opts,
                index=opts.index(str(current)),
                key=f"{key}.{i}:name",
                format_func=lambda n: (
                    _(rd.actions[n]["label"])
                    if n in rd.actions
                    else _("{name} (unknown)").format(name=n)
                ),
                label_visibility="collapsed",
            )
            if top[2].button("✕", key=f"{key}.{i}:del", help=_("Remove this action")):
                change = _("removed an action")
                continue
            params = dict(action.get("params") or {}) if name == current else {}
            new_params: dict[str, Any] = {}
            decls = (rd.actions.get(name) or {}).get("params") or []
            if decls:
                cols = st.columns(min(len(decls), 3))
                for j, d in enumerate(decls):
                    with cols[j % len(cols)]:
                        v = _param_widget(
                            rd, name, d, params.get(d["name"]), f"{key}.{i}:{name}:{d['name']}"
                        )
                    if v is not None:
                        new_params[d["name"]] = v
            if new_params.get("priority") == "high":
                st.markdown(
                    "<span style='background:#FEE2E2;color:#B91C1C;font-weight:600;padding:2px 8px;"
                    "border-radius:6px'>" + _("HIGH PRIORITY") + "</span>",
                    unsafe_allow_html=True,
                )
            for p in problems_under(problems, apath):
                st.error(_("Action {number}: {problem}").format(number=i + 1, problem=p.message))
            out.append({"name": name, "params": new_params})
    if st.button("+ " + _("Action"), key=f"{key}:add"):
        out.append(
            {
                "name": "notify_manager",
                "params": {"text": _("Deal {title} needs attention"), "priority": "normal"},
            }
        )
        change = _("added an action")
    return out, change

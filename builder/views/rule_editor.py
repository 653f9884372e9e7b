"""Rule editor: a visual condition builder (nested all/any groups) and an action list for one rule.

Choices come from ``export_rule_data``; every edit is validated live with the CLI's validator and the
problems are shown on the row they belong to. Edits go into the funnel's draft until saved.
"""

from __future__ import annotations

import copy
from typing import Any

import streamlit as st

from builder import state
from builder.action_list import actions_editor
from builder.canvas.layout import ensure_positions
from builder.common_conditions import common_condition_adder
from builder.components import (
    REPEAT_LABELS,
    RuleData,
    describe_path,
    draft_conditions,
    esc,
    label_input,
    problems_under,
    rule_summary,
    watched_stage,
)
from builder.condition_editor import condition_builder
from builder.state import page_boundary
from builder.views.designer import new_rule, rule_data_for
from engine.document.conditions import AllOf, AnyOf, Condition, parse
from engine.document.labels import label
from engine.i18n import _, ngettext

SELECTED = "rules_selected"  # other pages set this before switching here to preselect a rule
SELECTED_NEXT = (
    "rules_selected_next"  # a choice made after the picker exists; applied on the next run
)
NEW = "__new__"


@page_boundary
def render() -> None:
    st.title("🧩 " + _("Rule editor"))
    picked = state.owner_top()
    if picked is None:
        return
    right_top, funnel, doc = picked
    state.flash()
    bar = st.container()
    rules = doc.setdefault("rules", [])
    ids = [r["id"] for r in rules]
    by_id = {r["id"]: r for r in rules}
    rd = rule_data_for(doc)
    # The rule list: each rule's name and what it does in the owner's words.
    labels = {
        x: f"{'' if r.get('enabled', True) else '⏸ '}{label(r.get('name')) or x} — {rule_summary(r, rd)}"
        for x, r in by_id.items()
    }
    labels[NEW] = "➕ " + _("New rule…")
    rid = state.picker(right_top, _("Rule"), [*ids, NEW], labels, SELECTED)
    if rid == NEW:
        stage_names = {s["id"]: label(s["name"]) for s in doc["stages"]}
        st.subheader(_("New rule"))
        sid = st.selectbox(
            _("Stage it watches"),
            ["", *stage_names],
            format_func=lambda s: stage_names.get(s, _("— any stage —")),
            key=f"rules:{funnel}:newstage",
        )
        if st.button(_("Create rule"), type="primary", key=f"rules:{funnel}:create"):
            new_id = new_rule(doc, sid or None)
            state.bump(funnel)
            st.session_state[SELECTED_NEXT] = new_id
            st.rerun()
        with bar:
            state.save_bar(funnel, "rules")
        return

    i = ids.index(rid)
    rule_editor(funnel, doc, i, rd)
    with bar:
        state.save_bar(funnel, "rules")


def rule_editor(funnel: str, doc: dict[str, Any], i: int, rd: RuleData | None = None) -> None:
    """Edit ``doc['rules'][i]`` in place; reruns on structural changes (rows added or removed)."""
    rd = rd or rule_data_for(doc)
    rule = doc["rules"][i]
    gen = state.generation(funnel)
    key = f"rules:{funnel}:{gen}:{i}"
    prefix = f"rules[{i}]"
    problems = state.draft_problems(doc)
    mine = problems_under(problems, prefix)

    st.markdown(
        "<div style='font-size:1.1rem;background:#F1F5F9;border-left:5px solid #F59E0B;border-radius:6px;"
        f"padding:10px 14px;margin-bottom:0.8rem'>{esc(rule_summary(rule, rd))}"
        "</div>",
        unsafe_allow_html=True,
    )
    head = st.columns([2, 3, 2, 1])
    new = copy.deepcopy(rule)
    new["id"] = head[0].text_input(
        _("Id"),
        value=rule["id"],
        key=f"{key}:id",
        help=_("lowercase letters, digits and _; unique in the funnel"),
    )
    with head[1]:
        new["name"] = label_input(_("Name"), rule.get("name", ""), f"{key}:name")
    repeats = list(REPEAT_LABELS)
    new["repeat"] = head[2].selectbox(
        _("Fires"),
        repeats,
        index=repeats.index(rule.get("repeat", repeats[0])),
        format_func=lambda r: _(REPEAT_LABELS[r]),
        key=f"{key}:repeat",
    )
    with head[3]:
        st.markdown("<div style='height:1.9rem'></div>", unsafe_allow_html=True)
        new["enabled"] = st.toggle(
            _("Enabled"), value=rule.get("enabled", True), key=f"{key}:enabled"
        )
    for p in mine:
        if p.path in (f"{prefix}.id", f"{prefix}.name", prefix):
            st.error(f"{describe_path(p.path, prefix)}: {p.message}")

    heading = st.columns([3, 2])
    heading[0].markdown("##### " + _("Conditions"))
    rows = heading[1].toggle(
        _("Show every condition as rows"),
        key=f"rules:{funnel}:rows",
        help=_(
            "Common conditions (answered, not answered, any of … is “no”) are shown as one row; "
            "this shows the business-rules conditions they are made of."
        ),
    )
    cond = draft_conditions(rule.get("conditions") or {"all": []})
    c_change = None
    if cond is None:  # not a tree the builder can draw: kept as it is, the problems say what to fix
        for p in problems_under(problems, f"{prefix}.conditions"):
            st.error(f"{describe_path(p.path, prefix)}: {p.message}")
    else:
        if isinstance(cond, Condition):
            cond = AllOf(all=[cond])  # a single leaf is edited as a one-row group
        new_cond, c_change = condition_builder(
            cond, rd, f"{key}:c", f"{prefix}.conditions", problems, compact=not rows
        )
        shape = common_condition_adder(doc, rd, f"{key}:shape")
        if shape is not None:
            new_cond = _with(new_cond, parse(shape))
            c_change = "added a condition"
        new["conditions"] = new_cond.model_dump()

    st.markdown("##### " + _("Actions"))
    new_actions, a_change = actions_editor(
        rule.get("actions", []), rd, f"{key}:a", f"{prefix}.actions", problems
    )
    new["actions"] = new_actions

    old_stage = watched_stage(rule)
    if new != rule:
        doc["rules"][i] = new
        if new["id"] != rule["id"]:
            st.session_state[SELECTED_NEXT] = new["id"]
        if watched_stage(new) != old_stage:
            new.pop("position", None)  # hang it under its new stage in the designer
            ensure_positions(doc)
    if c_change or a_change:
        state.bump(funnel)
        st.rerun()
    if new != rule:
        st.rerun()  # re-validate and redraw the sentence with the new values

    st.divider()
    if mine:
        st.error(
            ngettext(
                "**This rule has {count} problem** and cannot be saved until it is fixed:",
                "**This rule has {count} problems** and cannot be saved until they are fixed:",
                len(mine),
            ).format(count=len(mine))
            + "\n\n"
            + "\n".join(f"- {describe_path(p.path, prefix)}: {p.message}" for p in mine)
        )
    else:
        st.success(_("This rule is valid."), icon="✅")
    cols = st.columns([1, 1, 4])
    if cols[0].button("🗑️ " + _("Delete rule"), key=f"{key}:delete"):
        del doc["rules"][i]
        st.session_state[SELECTED_NEXT] = None
        state.bump(funnel)
        st.rerun()
    with st.expander(_("JSON of this rule")):
        st.json(new, expanded=True)


def _with(group: AllOf | AnyOf, node: AllOf | AnyOf | Condition) -> AllOf | AnyOf:
    """``group`` and ``node`` both required: appended to a top "all", an "any" kept whole beside it."""
    if isinstance(group, AllOf):
        return AllOf(all=[*group.all, node])
    return AllOf(all=[group, node])

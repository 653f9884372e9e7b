"""Designer: the funnel as a graph (stages, transitions, rules) with an editor for the clicked node.

Edits go into the funnel's draft (``builder.state``) and become a new version only on Save.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from builder import state
from builder.canvas import funnel_canvas
from builder.canvas.edits import (
    add_transition,
    move_node,
    remove_transition,
)
from builder.canvas.elements import canvas_elements
from builder.components import (
    KIND_COLOURS,
    KIND_ICONS,
    KIND_NAMES,
    REPEAT_LABELS,
    RULE_COLOUR,
    RULE_HIGH_COLOUR,
    RuleData,
    describe_action,
    esc,
    rule_node_id,
    rule_summary,
    stage_node_id,
)
from builder.identity import can
from builder.state import page_boundary
from builder.views import calendar_form
from builder.views.deals import md
from builder.views.designer_doc import (
    AUTOSAVE,
    CANVAS_MSG,
    CANVAS_REV,
    CANVAS_SEQ,
    KINDS,
    PICK,
    PICK_NEXT,
    apply_edit,
    new_rule,
    rule_data_for,
)
from builder.views.new_funnel import start_funnel
from builder.views.stage_panel import add_stage, stage_editor, stage_view, transitions
from engine.core.access import Permission
from engine.document.labels import label
from engine.i18n import _

# The rule editor and the versions page import these from here (they live in designer_doc).
__all__ = ["apply_edit", "new_rule", "render", "rule_data_for"]


def _legend() -> None:
    kind_stage = {"open": _("open stage"), "won": _("won stage"), "lost": _("lost stage")}
    chips = "".join(
        f"<span style='display:inline-block;margin-right:14px'><span style='display:inline-block;width:12px;"
        f"height:12px;border-radius:3px;background:{c};margin-right:5px;vertical-align:-1px'></span>"
        f"{kind_stage[k]}</span>"
        for k, c in KIND_COLOURS.items()
    )
    rule, high = _("rule"), _("high-priority rule")
    moves, guard = _("dashed arrow: rule moves the deal"), _("entry guard")
    chips += (
        f"<span style='margin-right:14px'><span style='color:{RULE_COLOUR}'>●</span> {rule}</span>"
        f"<span style='margin-right:14px'><span style='color:{RULE_HIGH_COLOUR}'>●</span> "
        f"{high}</span>"
        f"<span style='margin-right:14px'>⤏ {moves}</span>"
        f"<span>🔒 {guard}</span>"
    )
    st.markdown(
        f"<div style='font-size:0.85rem;color:#374151'>{chips}</div>", unsafe_allow_html=True
    )


def _node_label(doc: dict[str, Any], nid: str) -> str:
    if not nid:
        return _("— choose a stage or rule —")
    kind, _sep, ident = nid.partition(":")
    if kind == "stage":
        s = next((s for s in doc["stages"] if s["id"] == ident), None)
        return (
            f"{KIND_ICONS.get(s.get('kind', 'open'), '')} "
            + _("Stage: {name}").format(name=label(s["name"]))
            if s
            else nid
        )
    r = next((r for r in doc.get("rules", []) if r["id"] == ident), None)
    return "⚙️ " + _("Rule: {name}").format(name=label(r.get("name")) or r["id"]) if r else nid


def _canvas(funnel: str, doc: dict[str, Any], rd: RuleData, node_ids: list[str]) -> None:
    """The editing canvas, and what the owner's last gesture on it does to the funnel. A role that may
    not change the funnel gets the canvas read-only: a click selects a node, nothing else changes."""
    big = len(doc["stages"]) > 8
    editable = can(Permission.WRITE_FUNNELS)
    event = funnel_canvas(
        canvas_elements(doc, rd, st.session_state.get(PICK), read_only=not editable),
        key=f"designer_canvas:{funnel}",
        selected=st.session_state.get(PICK),
        revision=st.session_state.get(CANVAS_REV, 0),
        height=680 if big else 560,
        read_only=not editable,
    )
    # Below the canvas, so a message never pushes the canvas down under the owner's mouse.
    msg = st.session_state.pop(CANVAS_MSG, None)
    if msg:
        (st.error if msg[0] == "error" else st.success)(
            msg[1], icon="🚫" if msg[0] == "error" else "💾"
        )
    if editable:
        _canvas_help()
    else:
        st.caption(
            "👁️ "
            + _("Read-only canvas: your role may look at the funnel and click a node to read it.")
        )
    if not event or event.get("seq") == st.session_state.get(CANVAS_SEQ):
        return
    st.session_state[CANVAS_SEQ] = event.get("seq")
    kind = event.get("type")
    if kind == "select":
        node = event.get("node") or ""
        if node in node_ids and node != st.session_state.get(PICK):
            st.session_state[PICK_NEXT] = node
            st.rerun()
        return
    if not editable:
        return  # a read-only canvas sends no edits, and none is taken from it either
    try:
        if kind == "move":
            node, x, y = str(event["node"]), float(event["x"]), float(event["y"])
            apply_edit(funnel, doc, lambda d: move_node(d, node, x, y))
        elif kind in ("connect", "delete_edge"):
            a, b = str(event["from"]), str(event["to"])
            apply_edit(
                funnel,
                doc,
                lambda d: (add_transition if kind == "connect" else remove_transition)(d, a, b),
            )
    except (KeyError, TypeError, ValueError):
        return  # not a gesture this page sends; nothing to do


def _canvas_help() -> None:
    cols = st.columns([3, 2])
    cols[0].caption(
        _(
            "Click a node to edit it · drag to move (a stage takes its rules along) · drag from a "
            "stage's ● handle to another stage to allow that move · click an arrow, then Delete, to "
            "remove it."
        )
    )
    cols[1].toggle(
        _("Save canvas changes at once"),
        value=True,
        key=AUTOSAVE,
        help=_(
            "Each move or connection becomes a new version right away. While other changes are "
            "unsaved, canvas changes join them and are saved with Save version."
        ),
    )


@page_boundary
def render() -> None:
    st.title("🗺️ " + _("Funnel designer"))
    c = state.get_reader()  # the designer only reads; saving goes through state.save_draft
    picked = state.owner_top()
    if picked is None:
        start_funnel(expanded=True)
        return
    right_top, funnel, doc = picked
    editable = can(Permission.WRITE_FUNNELS)
    right_top.caption(label(doc.get("description", "")))
    state.flash()
    bar = st.container()
    rd = rule_data_for(doc)

    node_ids = [stage_node_id(s["id"]) for s in doc["stages"]] + [
        rule_node_id(r["id"]) for r in doc.get("rules", [])
    ]
    if PICK_NEXT in st.session_state:
        st.session_state[PICK] = st.session_state[
            PICK_NEXT
        ]  # highlight it now; picker() applies it
    left, right = st.columns([7, 4], gap="medium")
    with left:
        _legend()
        _canvas(funnel, doc, rd, node_ids)
    with right:
        options = ["", *node_ids]
        pick = state.picker(st, _("Edit"), options, {n: _node_label(doc, n) for n in options}, PICK)
        if pick.startswith("stage:") and not editable:
            stage_view(doc, pick.split(":", 1)[1])
        elif pick.startswith("stage:"):
            stage_editor(c, funnel, doc, pick.split(":", 1)[1], rd)
        elif pick.startswith("rule:"):
            _rule_panel(funnel, doc, pick.split(":", 1)[1], rd)
        else:
            _overview(doc)
    with left:
        if editable:  # a reader gets the picture and the panels to read, not the editing tools
            add_stage(funnel, doc)
            transitions(funnel, doc)
            calendar_form.render(funnel, doc)
            start_funnel()
    with bar:
        state.save_bar(funnel, "designer")


def _overview(doc: dict[str, Any]) -> None:
    st.subheader(md(label(doc.get("name", ""))))
    kinds = {k: sum(1 for s in doc["stages"] if s.get("kind", "open") == k) for k in KINDS}
    cols = st.columns(3)
    cols[0].metric(
        _("Stages"),
        len(doc["stages"]),
        help=", ".join(f"{v} {_(KIND_NAMES[k])}" for k, v in kinds.items()),
    )
    cols[1].metric(_("Transitions"), len(doc.get("transitions", [])))
    cols[2].metric(_("Rules"), len(doc.get("rules", [])))
    st.info(_("Click a node in the graph (or pick it above) to edit a stage or a rule."), icon="👆")


def _rule_panel(funnel: str, doc: dict[str, Any], rid: str, rd: RuleData) -> None:
    i = next((k for k, r in enumerate(doc.get("rules", [])) if r["id"] == rid), None)
    if i is None:
        st.warning(_("Rule '{id}' is no longer in the draft.").format(id=rid))
        return
    rule = doc["rules"][i]
    k = f"designer:{funnel}:{state.generation(funnel)}:rule:{rid}"
    heading = _("Rule")
    st.markdown(
        f"<div style='border-left:6px solid {RULE_COLOUR};padding-left:10px'><h3 style='margin:0'>"
        f"{heading}</h3><span style='color:#6B7280'>id <code>{esc(rid)}</code></span></div>",
        unsafe_allow_html=True,
    )
    st.markdown(f"**{md(label(rule.get('name')) or rid)}**")
    enabled = st.toggle(
        _("Enabled"),
        value=rule.get("enabled", True),
        key=f"{k}:enabled",
        disabled=not can(Permission.WRITE_FUNNELS),
    )
    if enabled != rule.get("enabled", True):
        rule["enabled"] = enabled
        st.rerun()  # redraw the node grey / coloured
    st.info(md(rule_summary(rule, rd)), icon="💬")
    st.markdown(
        "**"
        + _("Then")
        + "**\n"
        + "\n".join(f"- {md(describe_action(a, rd))}" for a in rule.get("actions", []))
    )
    repeat = REPEAT_LABELS.get(rule.get("repeat", "once_per_stage_visit"), "")
    st.caption(_("Repeat: {policy}").format(policy=_(repeat)))
    if st.button("🧩 " + _("Edit conditions and actions"), type="primary", key=f"{k}:edit"):
        st.session_state["rules_selected_next"] = rid  # applied by the rule editor
        try:
            target = state.page("rules")
        except KeyError:  # rendered outside the router (a page test): no navigation to switch with
            st.info(_("Open the **Rule editor** page; this rule is selected there."))
        else:
            st.switch_page(target)

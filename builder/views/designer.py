"""Designer: the funnel as a graph (stages, transitions, rules) with an editor for the clicked node.

Edits go into the funnel's draft (``builder.state``) and become a new version only on Save.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import streamlit as st
from streamlit_agraph import agraph

from builder import state
from builder.components import (
    KIND_COLOURS,
    KIND_ICONS,
    REPEAT_LABELS,
    RULE_COLOUR,
    RULE_HIGH_COLOUR,
    RuleData,
    describe_action,
    describe_condition,
    esc,
    graph_config,
    graph_elements,
    labels_key,
    problems_under,
    rule_node_id,
    stage_node_id,
    watched_stage,
)
from builder.state import page_boundary
from builder.views.deals import md
from engine.document.limits import IDENT  # the validator's id pattern: one rule for ids
from engine.document.ruleset import RuleSet
from engine.document.validate import rule_data
from engine.errors import ConveyorError
from engine.rules.deal import BUILTIN_FIELDS

PICK = "designer_pick"
PICK_NEXT = "designer_pick_next"  # a pick requested after the picker exists; applied on the next run
LAST_CLICK = "designer_last_click"
KINDS = ["open", "won", "lost"]


def rule_data_for(doc: dict[str, Any]) -> RuleData:
    """Choices for widgets; custom fields count only when the field list itself is valid."""
    try:
        data = rule_data(RuleSet.model_validate({**doc, "rules": [], "transitions": []}))
    except Exception:  # noqa: BLE001 - a broken field list falls back to the built-in variables
        data = rule_data(None)
    stages = doc.get("stages", [])
    return RuleData(data, [s["id"] for s in stages], {s["id"]: s["name"] for s in stages},
                    [f for f, _ in state.get_reader().funnels()],
                    [f.get("name") for f in doc.get("fields", []) if isinstance(f, dict)])


def _legend() -> None:
    chips = "".join(
        f"<span style='display:inline-block;margin-right:14px'><span style='display:inline-block;width:12px;"
        f"height:12px;border-radius:3px;background:{c};margin-right:5px;vertical-align:-1px'></span>{k} stage</span>"
        for k, c in KIND_COLOURS.items())
    chips += (f"<span style='margin-right:14px'><span style='color:{RULE_COLOUR}'>●</span> rule</span>"
              f"<span style='margin-right:14px'><span style='color:{RULE_HIGH_COLOUR}'>●</span> high-priority rule</span>"
              "<span style='margin-right:14px'>⤏ dashed arrow: rule moves the deal</span>"
              "<span>🔒 entry guard</span>")
    st.markdown(f"<div style='font-size:0.85rem;color:#374151'>{chips}</div>", unsafe_allow_html=True)


def _node_label(doc: dict[str, Any], nid: str) -> str:
    if not nid:
        return "— choose a stage or rule —"
    kind, _, ident = nid.partition(":")
    if kind == "stage":
        s = next((s for s in doc["stages"] if s["id"] == ident), None)
        return f"{KIND_ICONS.get(s.get('kind', 'open'), '')} Stage: {s['name']}" if s else nid
    r = next((r for r in doc.get("rules", []) if r["id"] == ident), None)
    return f"⚙️ Rule: {r.get('name') or r['id']}" if r else nid


@page_boundary
def render() -> None:
    st.title("🗺️ Funnel designer")
    c = state.get_reader()  # the designer only reads; saving goes through state.save_draft
    picked = state.owner_top()
    if picked is None:
        return
    right_top, funnel, doc = picked
    right_top.caption(doc.get("description", ""))
    state.flash()
    bar = st.container()
    rd = rule_data_for(doc)

    node_ids = [stage_node_id(s["id"]) for s in doc["stages"]] + [rule_node_id(r["id"]) for r in doc.get("rules", [])]
    if PICK_NEXT in st.session_state:
        st.session_state[PICK] = st.session_state[PICK_NEXT]  # highlight it now; picker() applies it
    left, right = st.columns([7, 4], gap="medium")
    with left:
        _legend()
        nodes, edges = graph_elements(doc, rd, st.session_state.get(PICK))
        clicked = agraph(nodes=nodes, edges=edges, config=graph_config())
        # agraph returns the last clicked node id on every rerun; only a new click changes the pick.
        # A changed graph is a new component instance that starts at None: forget the old click then.
        if clicked is None:
            st.session_state[LAST_CLICK] = None
        elif clicked != st.session_state.get(LAST_CLICK):
            st.session_state[LAST_CLICK] = clicked
            if clicked in node_ids and clicked != st.session_state.get(PICK):
                st.session_state[PICK_NEXT] = clicked
                st.rerun()
        st.caption("Click a stage or a rule to edit it. Scroll to zoom, drag the background to pan.")
    with right:
        options = ["", *node_ids]
        pick = state.picker(st, "Edit", options, {n: _node_label(doc, n) for n in options}, PICK)
        if pick.startswith("stage:"):
            _stage_editor(c, funnel, doc, pick.split(":", 1)[1], rd)
        elif pick.startswith("rule:"):
            _rule_panel(funnel, doc, pick.split(":", 1)[1], rd)
        else:
            _overview(doc)
    with left:
        _add_stage(funnel, doc)
        _transitions(funnel, doc)
    with bar:
        state.save_bar(funnel, "designer")


def _overview(doc: dict[str, Any]) -> None:
    st.subheader(md(doc.get("name", "")))
    kinds = {k: sum(1 for s in doc["stages"] if s.get("kind", "open") == k) for k in KINDS}
    cols = st.columns(3)
    cols[0].metric("Stages", len(doc["stages"]), help=", ".join(f"{v} {k}" for k, v in kinds.items()))
    cols[1].metric("Transitions", len(doc.get("transitions", [])))
    cols[2].metric("Rules", len(doc.get("rules", [])))
    st.info("Click a node in the graph (or pick it above) to edit a stage or a rule.", icon="👆")


# -- stages ---------------------------------------------------------------------------------------------
def _stage_editor(c: Any, funnel: str, doc: dict[str, Any], sid: str, rd: RuleData) -> None:
    i = next((k for k, s in enumerate(doc["stages"]) if s["id"] == sid), None)
    if i is None:
        st.warning(f"Stage '{sid}' is no longer in the draft.")
        return
    stage = doc["stages"][i]
    gen = state.generation(funnel)
    k = f"designer:{funnel}:{gen}:stage:{sid}"
    colour = KIND_COLOURS.get(stage.get("kind", "open"), "#2563EB")
    st.markdown(f"<div style='border-left:6px solid {colour};padding-left:10px'><h3 style='margin:0'>Stage editor</h3>"
                f"<span style='color:#6B7280'>id <code>{esc(sid)}</code> · the id is fixed, rename freely</span></div>",
                unsafe_allow_html=True)
    new = copy.deepcopy(stage)
    new["name"] = st.text_input("Stage name", value=stage["name"], key=f"{k}:name")
    new["kind"] = st.radio("Kind", KINDS, index=KINDS.index(stage.get("kind", "open")), horizontal=True,
                           key=f"{k}:kind", format_func=lambda x: f"{KIND_ICONS[x]} {x}")
    field_names = [f["name"] for f in doc.get("fields", [])] + list(BUILTIN_FIELDS)
    labels = {f["name"]: f.get("label") or f["name"] for f in doc.get("fields", [])}
    current = list((stage.get("guard") or {}).get("required_fields") or [])
    required = st.multiselect("Entry guard: fields required before a deal may enter", field_names + [
        n for n in current if n not in field_names], default=current, key=f"{k}:guard",
        format_func=lambda n: f"{labels.get(n, n)} ({n})" if labels.get(n, n) != n else n)
    if required:
        # The chips are cut off in a narrow column: list every required field in full below them.
        st.caption("Required to enter: " + ", ".join(md(labels.get(n, n)) for n in required))
        new["guard"] = {"required_fields": required}
    else:
        new.pop("guard", None)
    initial = st.checkbox("Deals start in this stage", value=doc.get("initial_stage") == sid, key=f"{k}:initial")
    with st.expander("Position in the graph"):
        pc = st.columns(2)
        pos = stage.get("position") or {"x": 0, "y": 0}
        new["position"] = {"x": pc[0].number_input("x", value=float(pos["x"]), step=20.0, key=f"{k}:x"),
                           "y": pc[1].number_input("y", value=float(pos["y"]), step=20.0, key=f"{k}:y")}
        if new["position"] == {"x": float(pos["x"]), "y": float(pos["y"])}:
            new["position"] = pos
    changed = new != stage
    if changed:
        doc["stages"][i] = new
    if initial and doc.get("initial_stage") != sid:
        doc["initial_stage"] = sid
        changed = True
    elif not initial and doc.get("initial_stage") == sid:
        doc.pop("initial_stage", None)
        changed = True
    if changed:
        st.rerun()  # the graph and the picker above were drawn from the old draft
    for p in problems_under(state.draft_problems(doc), f"stages[{i}]"):
        st.error(f"{p.path.split('.', 1)[-1] if '.' in p.path else 'stage'}: {p.message}")

    st.markdown("**Transitions**")
    outgoing = [t for t in doc.get("transitions", []) if t["from"] == sid]
    incoming = [t for t in doc.get("transitions", []) if t["to"] == sid]
    names = {s["id"]: s["name"] for s in doc["stages"]}
    _transition_rows(funnel, doc, outgoing + incoming, f"{k}:deltr", [5, 1])
    targets = [s["id"] for s in doc["stages"] if s["id"] != sid and {"from": sid, "to": s["id"]} not in outgoing]
    if targets:
        ac = st.columns([4, 2])
        to = ac[0].selectbox("Allow a move to", targets, key=f"{k}:newto:{labels_key(names[x] for x in targets)}",
                             format_func=lambda x: names[x])
        ac[1].markdown("<div style='height:1.75rem'></div>", unsafe_allow_html=True)
        if ac[1].button("+ Transition", key=f"{k}:addtr"):
            doc.setdefault("transitions", []).append({"from": sid, "to": to})
            state.bump(funnel)
            st.rerun()

    st.markdown("**Rules watching this stage**")
    watching = [r for r in doc.get("rules", []) if watched_stage(r) == sid]
    if not watching:
        st.caption("No rule watches this stage yet.")
    for r in watching:
        if st.button(f"⚙️ {r.get('name') or r['id']}", key=f"{k}:open:{r['id']}"):
            st.session_state[PICK_NEXT] = rule_node_id(r["id"])
            st.rerun()
    if st.button("+ New rule for this stage", key=f"{k}:newrule"):
        rid = new_rule(doc, sid)
        state.bump(funnel)
        st.session_state[PICK_NEXT] = rule_node_id(rid)
        st.rerun()

    st.divider()
    if st.button("🗑️ Delete stage", key=f"{k}:delete"):
        refs = _blocking_references(c, funnel, doc, sid)
        if refs:
            st.error(f"Stage '{stage['name']}' cannot be deleted while these refer to it:\n\n"
                     + "\n".join(f"- {r}" for r in refs))
        else:
            doc["stages"] = [s for s in doc["stages"] if s["id"] != sid]
            doc["transitions"] = [t for t in doc.get("transitions", []) if sid not in (t["from"], t["to"])]
            st.session_state[PICK_NEXT] = ""
            state.bump(funnel)
            st.rerun()


def _blocking_references(c: Any, funnel: str, doc: dict[str, Any], sid: str) -> list[str]:
    """What keeps a stage from being deleted; its own transitions go with it and do not block."""
    try:
        rs = RuleSet.model_validate(doc)
    except Exception:  # noqa: BLE001 - a structurally broken draft: refuse rather than guess
        return ["the draft has errors; fix them before deleting stages"]
    try:
        refs = c.queries.stage_references(funnel, sid, rs)
    except ConveyorError as exc:
        return [str(exc)]
    return [r for r in refs if not r.startswith("transition ")]


def new_rule(doc: dict[str, Any], sid: str | None) -> str:
    ids = {r["id"] for r in doc.get("rules", [])}
    base = f"{sid}_rule" if sid else "new_rule"
    n = 1
    while f"{base}_{n}" in ids:
        n += 1
    rid = f"{base}_{n}"
    conds: list[dict[str, Any]] = [{"name": "hours_in_stage", "operator": "greater_than_or_equal_to", "value": 24}]
    if sid:
        conds.insert(0, {"name": "stage", "operator": "equal_to", "value": sid})
    doc.setdefault("rules", []).append({
        "id": rid, "name": "New rule", "enabled": True, "repeat": "once_per_stage_visit",
        "conditions": {"all": conds},
        "actions": [{"name": "notify_manager", "params": {"text": "Deal {title} needs attention", "priority": "normal"}}],
    })
    from builder.components import ensure_positions

    ensure_positions(doc)
    return rid


def _add_stage(funnel: str, doc: dict[str, Any]) -> None:
    with st.expander("➕ Add a stage", expanded=False), st.form(f"designer:addstage:{funnel}", clear_on_submit=True):
        cols = st.columns([2, 2, 1])
        name = cols[0].text_input("Name", placeholder="e.g. Negotiation")
        sid = cols[1].text_input("Id", placeholder="e.g. negotiation", help="lowercase letters, digits and _")
        kind = cols[2].selectbox("Kind", KINDS)
        stage_names = {s["id"]: s["name"] for s in doc["stages"]}
        after = st.selectbox("Allow a move into it from", ["", *stage_names], format_func=lambda x: stage_names.get(x, "— none —"),
                             key=f"designer:{funnel}:after:{labels_key(stage_names.values())}")
        if st.form_submit_button("Add stage", type="primary"):
            sid = (sid or _slug(name)).strip()
            if not name.strip():
                st.error("Give the stage a name.")
            elif not IDENT.match(sid):
                st.error(f"'{sid}' is not a valid stage id: use lowercase letters, digits and '_', starting with a letter.")
            elif sid in stage_names:
                st.error(f"A stage with id '{sid}' already exists.")
            else:
                xs = [s.get("position", {}).get("x", 0) for s in doc["stages"]]
                doc["stages"].append({"id": sid, "name": name.strip(), "kind": kind,
                                      "position": {"x": (max(xs) + 220) if xs else 0, "y": 0}})
                if after:
                    doc.setdefault("transitions", []).append({"from": after, "to": sid})
                st.session_state[PICK_NEXT] = stage_node_id(sid)
                state.bump(funnel)
                st.rerun()


def _slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return s if s and s[0].isalpha() else f"stage_{s}".strip("_")


def _transitions(funnel: str, doc: dict[str, Any]) -> None:
    names = {s["id"]: s["name"] for s in doc["stages"]}
    with st.expander(f"↔️ All transitions ({len(doc.get('transitions', []))})"):
        _transition_rows(funnel, doc, list(doc.get("transitions", [])), f"designer:{funnel}:alltr", [6, 1], names)


def _transition_rows(funnel: str, doc: dict[str, Any], transitions: list[dict[str, str]], key: str,
                     widths: list[int], names: dict[str, str] | None = None) -> None:
    """One row per transition, "A → B" with a ✕ that removes it from the draft."""
    names = names if names is not None else {s["id"]: s["name"] for s in doc["stages"]}
    for t in transitions:
        tc = st.columns(widths)
        tc[0].write(f"{names.get(t['from'], t['from'])} → {names.get(t['to'], t['to'])}")
        if tc[1].button("✕", key=f"{key}:{t['from']}:{t['to']}", help="Remove this transition"):
            doc["transitions"] = [x for x in doc["transitions"] if x != t]
            state.bump(funnel)
            st.rerun()


# -- rules ------------------------------------------------------------------------------------------------
def _rule_panel(funnel: str, doc: dict[str, Any], rid: str, rd: RuleData) -> None:
    i = next((k for k, r in enumerate(doc.get("rules", [])) if r["id"] == rid), None)
    if i is None:
        st.warning(f"Rule '{rid}' is no longer in the draft.")
        return
    rule = doc["rules"][i]
    k = f"designer:{funnel}:{state.generation(funnel)}:rule:{rid}"
    st.markdown(f"<div style='border-left:6px solid {RULE_COLOUR};padding-left:10px'><h3 style='margin:0'>Rule</h3>"
                f"<span style='color:#6B7280'>id <code>{esc(rid)}</code></span></div>", unsafe_allow_html=True)
    st.markdown(f"**{md(rule.get('name') or rid)}**")
    enabled = st.toggle("Enabled", value=rule.get("enabled", True), key=f"{k}:enabled")
    if enabled != rule.get("enabled", True):
        rule["enabled"] = enabled
        st.rerun()  # redraw the node grey / coloured
    st.markdown(f"**When** {describe_condition(rule.get('conditions'), rd)}")
    st.markdown("**Then**\n" + "\n".join(f"- {describe_action(a, rd)}" for a in rule.get("actions", [])))
    st.caption(f"Repeat: {REPEAT_LABELS.get(rule.get('repeat', 'once_per_stage_visit'))}")
    if st.button("🧩 Edit conditions and actions", type="primary", key=f"{k}:edit"):
        st.session_state["rules_selected_next"] = rid  # applied by the rule editor
        try:
            target = state.page("rules")
        except KeyError:  # rendered outside the router (a page test): no navigation to switch with
            st.info("Open the **Rule editor** page; this rule is selected there.")
        else:
            st.switch_page(target)

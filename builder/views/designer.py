"""Designer: the funnel as a graph (stages, transitions, rules) with an editor for the clicked node.

Edits go into the funnel's draft (``builder.state``) and become a new version only on Save.
"""

from __future__ import annotations

import copy
from typing import Any

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from builder import state
from builder.canvas import funnel_canvas
from builder.canvas.edits import (
    EditRefused,
    add_transition,
    insert_stage_after,
    move_node,
    remove_transition,
)
from builder.canvas.elements import canvas_elements
from builder.canvas.layout import free_rule_slot
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
    label_input,
    labels_key,
    problems_under,
    rule_node_id,
    rule_summary,
    stage_node_id,
    watched_stage,
)
from builder.naming import name_and_id
from builder.state import page_boundary
from builder.views import calendar_form
from builder.views.deals import md
from builder.views.new_funnel import start_funnel
from engine.document.ids import unique_id
from engine.document.labels import label
from engine.document.ruleset import RuleSet
from engine.document.summary import Vocabulary
from engine.document.validate import rule_data
from engine.errors import ConveyorError, RuleSetInvalid
from engine.i18n import _
from engine.rules.deal import BUILTIN_FIELDS

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
    funnels = dict(state.get_reader().funnels())
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


def _legend() -> None:
    kind_stage = {"open": _("open stage"), "won": _("won stage"), "lost": _("lost stage")}
    chips = "".join(
        f"<span style='display:inline-block;margin-right:14px'><span style='display:inline-block;width:12px;"
        f"height:12px;border-radius:3px;background:{c};margin-right:5px;vertical-align:-1px'></span>"
        f"{kind_stage[k]}</span>"
        for k, c in KIND_COLOURS.items()
    )
    chips += (
        f"<span style='margin-right:14px'><span style='color:{RULE_COLOUR}'>●</span> {_('rule')}</span>"
        f"<span style='margin-right:14px'><span style='color:{RULE_HIGH_COLOUR}'>●</span> "
        f"{_('high-priority rule')}</span>"
        f"<span style='margin-right:14px'>⤏ {_('dashed arrow: rule moves the deal')}</span>"
        f"<span>🔒 {_('entry guard')}</span>"
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
    """The editing canvas, and what the owner's last gesture on it does to the funnel."""
    big = len(doc["stages"]) > 8
    event = funnel_canvas(
        canvas_elements(doc, rd, st.session_state.get(PICK)),
        key=f"designer_canvas:{funnel}",
        selected=st.session_state.get(PICK),
        revision=st.session_state.get(CANVAS_REV, 0),
        height=680 if big else 560,
    )
    # Below the canvas, so a message never pushes the canvas down under the owner's mouse.
    msg = st.session_state.pop(CANVAS_MSG, None)
    if msg:
        (st.error if msg[0] == "error" else st.success)(
            msg[1], icon="🚫" if msg[0] == "error" else "💾"
        )
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


@page_boundary
def render() -> None:
    st.title("🗺️ " + _("Funnel designer"))
    c = state.get_reader()  # the designer only reads; saving goes through state.save_draft
    picked = state.owner_top()
    if picked is None:
        start_funnel(expanded=True)
        return
    right_top, funnel, doc = picked
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
        if pick.startswith("stage:"):
            _stage_editor(c, funnel, doc, pick.split(":", 1)[1], rd)
        elif pick.startswith("rule:"):
            _rule_panel(funnel, doc, pick.split(":", 1)[1], rd)
        else:
            _overview(doc)
    with left:
        _add_stage(funnel, doc)
        _transitions(funnel, doc)
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


# -- stages ---------------------------------------------------------------------------------------------
def _stage_editor(c: Any, funnel: str, doc: dict[str, Any], sid: str, rd: RuleData) -> None:
    i = next((k for k, s in enumerate(doc["stages"]) if s["id"] == sid), None)
    if i is None:
        st.warning(_("Stage '{id}' is no longer in the draft.").format(id=sid))
        return
    stage = doc["stages"][i]
    gen = state.generation(funnel)
    k = f"designer:{funnel}:{gen}:stage:{sid}"
    colour = KIND_COLOURS.get(stage.get("kind", "open"), "#2563EB")
    st.markdown(
        f"<div style='border-left:6px solid {colour};padding-left:10px'><h3 style='margin:0'>"
        f"{_('Stage editor')}</h3><span style='color:#6B7280'>"
        + _("id {id} · the id is fixed, rename freely").format(id=f"<code>{esc(sid)}</code>")
        + "</span></div>",
        unsafe_allow_html=True,
    )
    new = copy.deepcopy(stage)
    new["name"] = label_input(_("Stage name"), stage["name"], f"{k}:name")
    new["kind"] = st.radio(
        _("Kind"),
        KINDS,
        index=KINDS.index(stage.get("kind", "open")),
        horizontal=True,
        key=f"{k}:kind",
        format_func=lambda x: f"{KIND_ICONS[x]} {_(KIND_NAMES[x])}",
    )
    field_names = [f["name"] for f in doc.get("fields", [])] + list(BUILTIN_FIELDS)
    labels = {f["name"]: label(f.get("label")) or f["name"] for f in doc.get("fields", [])}
    current = list((stage.get("guard") or {}).get("required_fields") or [])
    required = st.multiselect(
        _("Entry guard: fields required before a deal may enter"),
        field_names + [n for n in current if n not in field_names],
        default=current,
        key=f"{k}:guard",
        format_func=lambda n: f"{labels.get(n, n)} ({n})" if labels.get(n, n) != n else n,
    )
    if required:
        # The chips are cut off in a narrow column: list every required field in full below them.
        st.caption(
            _("Required to enter: {fields}").format(
                fields=", ".join(md(labels.get(n, n)) for n in required)
            )
        )
        new["guard"] = {"required_fields": required}
    else:
        new.pop("guard", None)
    initial = st.checkbox(
        _("Deals start in this stage"), value=doc.get("initial_stage") == sid, key=f"{k}:initial"
    )
    with st.expander(_("Position in the graph")):
        pc = st.columns(2)
        pos = stage.get("position") or {"x": 0, "y": 0}
        new["position"] = {
            "x": pc[0].number_input("x", value=float(pos["x"]), step=20.0, key=f"{k}:x"),
            "y": pc[1].number_input("y", value=float(pos["y"]), step=20.0, key=f"{k}:y"),
        }
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
        st.error(f"{p.path.split('.', 1)[-1] if '.' in p.path else _('stage')}: {p.message}")

    st.markdown("**" + _("Transitions") + "**")
    outgoing = [t for t in doc.get("transitions", []) if t["from"] == sid]
    incoming = [t for t in doc.get("transitions", []) if t["to"] == sid]
    names = {s["id"]: label(s["name"]) for s in doc["stages"]}
    _transition_rows(funnel, doc, outgoing + incoming, f"{k}:deltr", [5, 1])
    targets = [
        s["id"]
        for s in doc["stages"]
        if s["id"] != sid and {"from": sid, "to": s["id"]} not in outgoing
    ]
    if targets:
        ac = st.columns([4, 2])
        to = ac[0].selectbox(
            _("Allow a move to"),
            targets,
            key=f"{k}:newto:{labels_key(names[x] for x in targets)}",
            format_func=lambda x: names[x],
        )
        ac[1].markdown("<div style='height:1.75rem'></div>", unsafe_allow_html=True)
        if ac[1].button("+ " + _("Transition"), key=f"{k}:addtr"):
            doc.setdefault("transitions", []).append({"from": sid, "to": to})
            state.bump(funnel)
            st.rerun()

    st.markdown("**" + _("Rules watching this stage") + "**")
    watching = [r for r in doc.get("rules", []) if watched_stage(r) == sid]
    if not watching:
        st.caption(_("No rule watches this stage yet."))
    for r in watching:
        if st.button(
            f"⚙️ {label(r.get('name')) or r['id']}",
            key=f"{k}:open:{r['id']}",
            help=rule_summary(r, rd),
        ):
            st.session_state[PICK_NEXT] = rule_node_id(r["id"])
            st.rerun()
        st.caption(md(rule_summary(r, rd, with_stage=False)))
    if st.button("+ " + _("New rule for this stage"), key=f"{k}:newrule"):
        rid = new_rule(doc, sid)
        state.bump(funnel)
        st.session_state[PICK_NEXT] = rule_node_id(rid)
        st.rerun()

    _insert_after(funnel, doc, sid)

    st.divider()
    if st.button("🗑️ " + _("Delete stage"), key=f"{k}:delete"):
        refs = _blocking_references(c, funnel, doc, sid)
        if refs:
            st.error(
                _("Stage '{name}' cannot be deleted while these refer to it:").format(
                    name=label(stage["name"])
                )
                + "\n\n"
                + "\n".join(f"- {r}" for r in refs)
            )
        else:
            doc["stages"] = [s for s in doc["stages"] if s["id"] != sid]
            doc["transitions"] = [
                t for t in doc.get("transitions", []) if sid not in (t["from"], t["to"])
            ]
            st.session_state[PICK_NEXT] = ""
            state.bump(funnel)
            st.rerun()


def _blocking_references(c: Any, funnel: str, doc: dict[str, Any], sid: str) -> list[str]:
    """What keeps a stage from being deleted; its own transitions go with it and do not block."""
    try:
        rs = RuleSet.model_validate(doc)
    except Exception:  # noqa: BLE001 - a structurally broken draft: refuse rather than guess
        return [_("the draft has errors; fix them before deleting stages")]
    try:
        refs = c.queries.stage_references(funnel, sid, rs)
    except ConveyorError as exc:
        return [str(exc)]
    return [r for r in refs if not r.startswith("transition ")]


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


def _insert_after(funnel: str, doc: dict[str, Any], sid: str) -> None:
    """ "Insert a stage after X": X's forward moves go through the new stage; the row is laid out again."""
    stage = next(s for s in doc["stages"] if s["id"] == sid)
    with st.expander(
        "➕ " + _("Insert a stage after {stage}").format(stage=md(label(stage["name"])))
    ):
        key = f"designer:{funnel}:insert:{sid}"
        name, new_id, problem = name_and_id(
            key,
            {s["id"] for s in doc["stages"]},
            placeholder=_("e.g. Демо-дзвінок"),
            labels=(_("New stage name"), _("New stage id")),
        )
        kind = st.radio(
            _("Kind of the new stage"),
            KINDS,
            horizontal=True,
            key=f"{key}:kind",
            format_func=lambda x: f"{KIND_ICONS[x]} {_(KIND_NAMES[x])}",
        )
        outgoing = [t["to"] for t in doc.get("transitions", []) if t["from"] == sid]
        names = {s["id"]: label(s["name"]) for s in doc["stages"]}
        if outgoing:
            st.caption(
                _(
                    "{stage} → new stage → {next} (moves into lost stages stay allowed from both)"
                ).format(
                    stage=md(label(stage["name"])),
                    next=", ".join(md(names.get(t, t)) for t in outgoing),
                )
            )
        if st.button(_("Insert stage"), type="primary", key=f"{key}:go"):
            if problem:
                st.error(problem)
                return
            for suffix in (":name", ":id", ":id_auto"):
                st.session_state.pop(key + suffix, None)
            apply_edit(
                funnel,
                doc,
                lambda d: insert_stage_after(d, sid, name, new_id, kind),
                pick=stage_node_id(new_id),
            )


def _add_stage(funnel: str, doc: dict[str, Any]) -> None:
    with st.expander("➕ " + _("Add a stage"), expanded=False):
        key = f"designer:{funnel}:addstage"
        stage_names = {s["id"]: label(s["name"]) for s in doc["stages"]}
        cols = st.columns([3, 1])
        with cols[0]:
            name, sid, problem = name_and_id(
                key,
                set(stage_names),
                placeholder=_("e.g. Negotiation"),
                labels=(_("Name"), _("Id")),
            )
        kind = cols[1].selectbox(
            _("Kind"), KINDS, key=f"{key}:kind", format_func=lambda x: _(KIND_NAMES[x])
        )
        after = st.selectbox(
            _("Allow a move into it from"),
            ["", *stage_names],
            format_func=lambda x: stage_names.get(x, _("— none —")),
            key=f"designer:{funnel}:after:{labels_key(stage_names.values())}",
        )
        if st.button(_("Add stage"), type="primary", key=f"{key}:go"):
            if problem:
                st.error(problem)
                return
            for suffix in (":name", ":id", ":id_auto"):
                st.session_state.pop(key + suffix, None)
            xs = [s.get("position", {}).get("x", 0) for s in doc["stages"]]
            doc["stages"].append(
                {
                    "id": sid,
                    "name": name,
                    "kind": kind,
                    "position": {"x": float(max(xs) + 220) if xs else 0.0, "y": 0.0},
                }
            )
            if after:
                doc.setdefault("transitions", []).append({"from": after, "to": sid})
            st.session_state[PICK_NEXT] = stage_node_id(sid)
            state.bump(funnel)
            st.rerun()


def _transitions(funnel: str, doc: dict[str, Any]) -> None:
    names = {s["id"]: label(s["name"]) for s in doc["stages"]}
    with st.expander(
        "↔️ " + _("All transitions ({count})").format(count=len(doc.get("transitions", [])))
    ):
        _transition_rows(
            funnel, doc, list(doc.get("transitions", [])), f"designer:{funnel}:alltr", [6, 1], names
        )


def _transition_rows(
    funnel: str,
    doc: dict[str, Any],
    transitions: list[dict[str, str]],
    key: str,
    widths: list[int],
    names: dict[str, str] | None = None,
) -> None:
    """One row per transition, "A → B" with a ✕ that removes it from the draft."""
    names = names if names is not None else {s["id"]: label(s["name"]) for s in doc["stages"]}
    for t in transitions:
        tc = st.columns(widths)
        tc[0].write(f"{names.get(t['from'], t['from'])} → {names.get(t['to'], t['to'])}")
        if tc[1].button("✕", key=f"{key}:{t['from']}:{t['to']}", help=_("Remove this transition")):
            doc["transitions"] = [x for x in doc["transitions"] if x != t]
            state.bump(funnel)
            st.rerun()


# -- rules ------------------------------------------------------------------------------------------------
def _rule_panel(funnel: str, doc: dict[str, Any], rid: str, rd: RuleData) -> None:
    i = next((k for k, r in enumerate(doc.get("rules", [])) if r["id"] == rid), None)
    if i is None:
        st.warning(_("Rule '{id}' is no longer in the draft.").format(id=rid))
        return
    rule = doc["rules"][i]
    k = f"designer:{funnel}:{state.generation(funnel)}:rule:{rid}"
    st.markdown(
        f"<div style='border-left:6px solid {RULE_COLOUR};padding-left:10px'><h3 style='margin:0'>{_('Rule')}</h3>"
        f"<span style='color:#6B7280'>id <code>{esc(rid)}</code></span></div>",
        unsafe_allow_html=True,
    )
    st.markdown(f"**{md(label(rule.get('name')) or rid)}**")
    enabled = st.toggle(_("Enabled"), value=rule.get("enabled", True), key=f"{k}:enabled")
    if enabled != rule.get("enabled", True):
        rule["enabled"] = enabled
        st.rerun()  # redraw the node grey / coloured
    st.info(md(rule_summary(rule, rd)), icon="💬")
    st.markdown(
        f"**{_('Then')}**\n"
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

"""The Designer's stage panel: edit the clicked stage (name, kind, guard, calendar, its rules),
insert a stage after it, add a stage, and the transitions between stages."""

from __future__ import annotations

import copy
from typing import Any

import streamlit as st

from builder import state
from builder.canvas.edits import (
    insert_stage_after,
)
from builder.components import (
    KIND_COLOURS,
    KIND_ICONS,
    KIND_NAMES,
    RuleData,
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
from builder.views.deals import md
from builder.views.designer_doc import KINDS, PICK_NEXT, apply_edit, new_rule
from engine.document.labels import label
from engine.document.ruleset import RuleSet
from engine.errors import ConveyorError
from engine.i18n import _
from engine.rules.deal import BUILTIN_FIELDS

__all__ = ["add_stage", "stage_editor", "transitions"]


def stage_view(doc: dict[str, Any], sid: str) -> None:
    """A stage as a reader sees it (a role that may not change the funnel): its name, kind, entry guard
    and moves, as text, with no boxes that look editable."""
    stage = next((s for s in doc["stages"] if s["id"] == sid), None)
    if stage is None:
        st.warning(_("Stage '{id}' is no longer in the draft.").format(id=sid))
        return
    names = {s["id"]: label(s["name"]) for s in doc["stages"]}
    kind = stage.get("kind", "open")
    colour = KIND_COLOURS.get(kind, "#2563EB")
    st.markdown(
        f"<div style='border-left:6px solid {colour};padding-left:10px'><h3 style='margin:0'>"
        + esc(label(stage["name"]))
        + "</h3><span style='color:#6B7280'>"
        + esc(_("Stage · {kind} · id {id}").format(kind=_(KIND_NAMES.get(kind, kind)), id=sid))
        + "</span></div>",
        unsafe_allow_html=True,
    )
    required = (stage.get("guard") or {}).get("required_fields") or []
    if required:
        fields = {f["name"]: label(f.get("label") or f["name"]) for f in doc.get("fields", [])}
        shown = ", ".join(fields.get(r, r) for r in required)
        st.markdown(
            "🔒 " + _("Required before a deal may enter: {fields}").format(fields=md(shown))
        )
    for title, moves in (
        (_("Deals may move to"), [t["to"] for t in doc.get("transitions", []) if t["from"] == sid]),
        (
            _("Deals may come from"),
            [t["from"] for t in doc.get("transitions", []) if t["to"] == sid],
        ),
    ):
        st.markdown(
            f"**{title}:** " + (md(", ".join(names.get(m, m) for m in moves)) if moves else "—")
        )
    st.caption("👁️ " + _("Read only: your role may look at the funnel, not change it."))


def stage_editor(c: Any, funnel: str, doc: dict[str, Any], sid: str, rd: RuleData) -> None:
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
        + _("Stage editor")
        + "</h3><span style='color:#6B7280'>"
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
        where = p.path.split(".", 1)[-1] if "." in p.path else _("stage")
        st.error(f"{where}: {p.message}")

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


def add_stage(funnel: str, doc: dict[str, Any]) -> None:
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


def transitions(funnel: str, doc: dict[str, Any]) -> None:
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

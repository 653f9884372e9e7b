"""What changed between two versions of a funnel, as an owner reads it, and a picture of both.

``differences`` lists stages, rules, fields, events and transitions by name; a changed condition or
action is shown before → after in the owner's words (``engine.document.summary``). A change of
position only (a node dragged on the canvas) is counted apart so the page can hide it. ``pictures``
draws both versions with streamlit-agraph, the changed nodes highlighted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from builder.components import RuleData, graph_config, graph_elements
from engine.document.labels import label
from engine.document.ruleset import RuleSet
from engine.document.summary import Vocabulary, describe_actions, describe_conditions, summarise
from engine.i18n import _

__all__ = ["Change", "Differences", "differences", "pictures"]

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
HIGHLIGHT = {ADDED: "#16A34A", REMOVED: "#DC2626", CHANGED: "#7C3AED"}


@dataclass(frozen=True)
class Change:
    what: str  # stage, rule, field, event, transition, funnel
    name: str
    change: str  # what happened, in words
    before: str = ""
    after: str = ""
    node: str = ""  # the graph node it concerns ("stage:paid", "rule:x"), if any
    kind: str = CHANGED  # added / removed / changed
    position_only: bool = False


@dataclass
class Differences:
    changes: list[Change] = field(default_factory=list)

    def shown(self, with_positions: bool) -> list[Change]:
        return [c for c in self.changes if with_positions or not c.position_only]

    @property
    def position_only(self) -> int:
        return sum(1 for c in self.changes if c.position_only)

    def nodes(self, with_positions: bool) -> dict[str, str]:
        """Graph node id → added / removed / changed, for the highlighted picture."""
        out: dict[str, str] = {}
        for c in self.shown(with_positions):
            if c.node and out.get(c.node) not in (ADDED, REMOVED):
                out[c.node] = c.kind
        return out


def _stage_changes(old: RuleSet, new: RuleSet) -> list[Change]:
    out = []
    a, b = {s.id: s for s in old.stages}, {s.id: s for s in new.stages}
    for sid in [*a, *(x for x in b if x not in a)]:
        node = f"stage:{sid}"
        if sid not in b:
            out.append(Change("stage", label(a[sid].name), _("removed"), node=node, kind=REMOVED))
            continue
        if sid not in a:
            out.append(Change("stage", label(b[sid].name), _("added"), node=node, kind=ADDED))
            continue
        s, t = a[sid], b[sid]
        name = label(t.name)
        if s.name != t.name or label(s.name) != name:
            out.append(Change("stage", name, _("renamed"), label(s.name), name, node))
        if s.kind != t.kind:
            out.append(Change("stage", name, _("kind"), s.kind.value, t.kind.value, node))
        guard_a = ", ".join(s.guard.required_fields) if s.guard else ""
        guard_b = ", ".join(t.guard.required_fields) if t.guard else ""
        if guard_a != guard_b:
            out.append(Change("stage", name, _("fields required to enter"), guard_a, guard_b, node))
        if s.position != t.position:
            out.append(
                Change("stage", name, _("moved on the canvas"), node=node, position_only=True)
            )
    return out


def _rule_changes(old: RuleSet, new: RuleSet, va: Vocabulary, vb: Vocabulary) -> list[Change]:
    out = []
    a, b = {r.id: r for r in old.rules}, {r.id: r for r in new.rules}
    for rid in [*a, *(x for x in b if x not in a)]:
        node = f"rule:{rid}"
        if rid not in b:
            r = a[rid]
            out.append(
                Change(
                    "rule", label(r.name) or rid, _("removed"), summarise(r, va), "", node, REMOVED
                )
            )
            continue
        if rid not in a:
            r = b[rid]
            out.append(
                Change("rule", label(r.name) or rid, _("added"), "", summarise(r, vb), node, ADDED)
            )
            continue
        r, s = a[rid], b[rid]
        name = label(s.name) or rid
        if r.name != s.name or label(r.name) != label(s.name):
            out.append(Change("rule", name, _("renamed"), label(r.name), name, node))
        if r.conditions.model_dump() != s.conditions.model_dump():
            out.append(
                Change(
                    "rule",
                    name,
                    _("conditions"),
                    describe_conditions(r.conditions, va),
                    describe_conditions(s.conditions, vb),
                    node,
                )
            )
        if [x.model_dump() for x in r.actions] != [x.model_dump() for x in s.actions]:
            out.append(
                Change(
                    "rule",
                    name,
                    _("actions"),
                    describe_actions(r.actions, va),
                    describe_actions(s.actions, vb),
                    node,
                )
            )
        if r.enabled != s.enabled:
            words = {True: _("on"), False: _("off")}
            out.append(
                Change("rule", name, _("switched"), words[r.enabled], words[s.enabled], node)
            )
        if r.repeat != s.repeat:
            out.append(
                Change(
                    "rule",
                    name,
                    _("fires"),
                    r.repeat.value.replace("_", " "),
                    s.repeat.value.replace("_", " "),
                    node,
                )
            )
        if r.position != s.position:
            out.append(
                Change("rule", name, _("moved on the canvas"), node=node, position_only=True)
            )
    return out


def _named_changes(what: str, a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    """Fields and events: added, removed, or changed (label, type, options… as JSON words)."""
    out = []
    for key in [*a, *(x for x in b if x not in a)]:
        if key not in b:
            out.append(Change(what, _label(a[key], key), _("removed"), kind=REMOVED))
        elif key not in a:
            out.append(Change(what, _label(b[key], key), _("added"), kind=ADDED))
        elif a[key] != b[key]:
            keys = [k for k in {**a[key], **b[key]} if a[key].get(k) != b[key].get(k)]
            out.append(
                Change(
                    what,
                    _label(b[key], key),
                    ", ".join(keys),
                    "; ".join(f"{k}: {_text(a[key].get(k))}" for k in keys),
                    "; ".join(f"{k}: {_text(b[key].get(k))}" for k in keys),
                )
            )
    return out


def _label(item: dict[str, Any], key: str) -> str:
    return label(item.get("label")) or key


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "—"
    return str(value)


def differences(old: RuleSet, new: RuleSet, funnels: dict[str, str] | None = None) -> Differences:
    va, vb = Vocabulary.of(old, funnels), Vocabulary.of(new, funnels)
    out = Differences()
    for attr, what in (("name", _("name")), ("description", _("description"))):
        if getattr(old, attr) != getattr(new, attr):
            out.changes.append(
                Change(
                    "funnel",
                    label(new.name),
                    what,
                    label(getattr(old, attr)),
                    label(getattr(new, attr)),
                )
            )
    if old.entry_stage != new.entry_stage:
        out.changes.append(
            Change(
                "funnel",
                label(new.name),
                _("deals start in"),
                va.stage(old.entry_stage),
                vb.stage(new.entry_stage),
            )
        )
    out.changes += _stage_changes(old, new)
    ta = {(t.from_, t.to) for t in old.transitions}
    tb = {(t.from_, t.to) for t in new.transitions}
    for f, t in sorted(ta - tb):
        out.changes.append(
            Change("transition", f"{va.stage(f)} → {va.stage(t)}", _("removed"), kind=REMOVED)
        )
    for f, t in sorted(tb - ta):
        out.changes.append(
            Change("transition", f"{vb.stage(f)} → {vb.stage(t)}", _("added"), kind=ADDED)
        )
    out.changes += _rule_changes(old, new, va, vb)
    out.changes += _named_changes(
        "field",
        {f.name: f.model_dump(mode="json") for f in old.fields},
        {f.name: f.model_dump(mode="json") for f in new.fields},
    )
    out.changes += _named_changes(
        "event",
        {e.name: e.model_dump(mode="json") for e in old.events},
        {e.name: e.model_dump(mode="json") for e in new.events},
    )
    return out


def _highlighted(doc: dict[str, Any], rd: RuleData, marks: dict[str, str], side: str) -> Any:
    """agraph nodes and edges of one version; its added / removed / changed nodes stand out."""
    nodes, edges = graph_elements(doc, rd)
    for n in nodes:
        kind = marks.get(n.id)
        if kind is None or (side == "old" and kind == ADDED) or (side == "new" and kind == REMOVED):
            continue
        colour = HIGHLIGHT[kind]
        n.borderWidth = 5
        n.shadow = {"enabled": True, "color": colour, "size": 18, "x": 0, "y": 0}
        base = n.color if isinstance(n.color, str) else (n.color or {}).get("background")
        n.color = {"background": base, "border": colour}
        n.title = f"{n.title}\n({kind})"
    return nodes, edges


def pictures(
    old: RuleSet,
    new: RuleSet,
    marks: dict[str, str],
    rds: tuple[RuleData, RuleData],
    titles: tuple[str, str],
) -> None:
    """Both versions side by side, read-only (streamlit-agraph), the changed nodes highlighted."""
    import streamlit as st
    from streamlit_agraph import agraph

    from builder.canvas.layout import ensure_positions

    cols = st.columns(2)
    for col, rs, rd, side, title in zip(cols, (old, new), rds, ("old", "new"), titles, strict=True):
        doc = rs.to_document()
        ensure_positions(doc)
        nodes, edges = _highlighted(doc, rd, marks, side)
        config = graph_config(420)
        # agraph takes no key: a named (empty) vis group per side keeps two equal pictures apart.
        config.groups = {f"compare_{side}": {}}
        with col:
            st.markdown(f"**{title}**")
            agraph(nodes=nodes, edges=edges, config=config)

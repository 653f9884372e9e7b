"""Shared widgets of the owner pages: the funnel graph and the condition builder (the action list is
``builder.action_list``, user text and problem paths ``builder.text``).

Everything here reads choices from ``engine.document.validate.rule_data`` (business-rules' ``export_rule_data``),
so the builder offers exactly what the validator accepts. Drafts are plain document dicts; a rule's
conditions are read into the document's condition model (``engine.document.conditions``) and walked
by its visitor, and the condition builder hands back a model the caller dumps into the draft
(``builder.state``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

# Moved to builder.text; still importable from here, where the pages have always found them.
from builder.text import canvas_label as canvas_label
from builder.text import describe_path as describe_path
from builder.text import esc as esc
from builder.text import label_input as label_input
from builder.text import labels_key as labels_key
from builder.text import problems_under as problems_under
from builder.text import row_number as row_number
from engine.document.conditions import AllOf, AnyOf, Condition, Group, Visitor, parse
from engine.document.labels import label
from engine.document.summary import Vocabulary, summarise, summarise_both
from engine.i18n import N_, _

KIND_COLOURS = {"open": "#2563EB", "won": "#16A34A", "lost": "#DC2626"}
KIND_ICONS = {"open": "🔵", "won": "🟢", "lost": "🔴"}
#: A stage's kind as shown (translated where shown: ``_(KIND_NAMES[kind])``).
KIND_NAMES = {"open": N_("open"), "won": N_("won"), "lost": N_("lost")}
RULE_COLOUR = "#F59E0B"
RULE_DISABLED_COLOUR = "#9CA3AF"
RULE_HIGH_COLOUR = "#B91C1C"

#: Operator names as an owner reads them (business-rules' own labels are "Greater Than Or Equal To");
#: the rule editor and the dry run both show these.
OP_SYMBOLS = {
    "equal_to": "=",
    "greater_than": ">",
    "greater_than_or_equal_to": "≥",
    "less_than": "<",
    "less_than_or_equal_to": "≤",
    "equal_to_case_insensitive": N_("= (any case)"),
    "contains": N_("contains"),
    "does_not_contain": N_("does not contain"),
    "starts_with": N_("starts with"),
    "ends_with": N_("ends with"),
    "matches_regex": N_("matches pattern"),
    "non_empty": N_("is filled in"),
    "is_true": N_("is yes"),
    "is_false": N_("is no"),
}
#: Translated where shown: ``_(REPEAT_LABELS[policy])``.
REPEAT_LABELS = {
    "once_per_stage_visit": N_("Once per stage visit"),
    "once_per_deal": N_("Once per deal"),
    "after_each_activity": N_("Again after each manager activity"),
}


# -- labels ------------------------------------------------------------------------------------------


def op_label(op: dict[str, Any]) -> str:
    symbol = OP_SYMBOLS.get(op["name"])
    return _(symbol) if symbol else op["label"].lower()


def _builtin_variable_order() -> list[str]:
    """The built-in variables as a person reads them: stage, the "hours since" ones, then the rest."""
    from engine.rules.registry import BUILTINS

    times = [v.name for v in BUILTINS if v.is_time]
    return [
        "stage",
        *times,
        *(v.name for v in BUILTINS if v.name != "stage" and v.name not in times),
    ]


_BUILTIN_ORDER = _builtin_variable_order()


def _variable_rank(
    name: str, fields: list[str], events: tuple[str, ...] | list[str] = ()
) -> tuple[int, int, str]:
    # export_rule_data lists variables by their Python name; a widget shows them in reading order:
    # built-ins, then each declared event with its "hours since", then the custom fields; a
    # working-time twin sorts right after the variable it counts like (its name is the longer).
    twin_of = name[len("working_") :] if name.startswith("working_hours_") else None
    if twin_of is not None and (twin_of in _BUILTIN_ORDER or twin_of.startswith("hours_since_")):
        return _variable_rank(twin_of, fields, events)[:2] + (name,)
    if name in _BUILTIN_ORDER:
        return (0, _BUILTIN_ORDER.index(name), name)
    if name in events:
        return (1, 2 * events.index(name), name)
    if name.startswith("hours_since_") and name[len("hours_since_") :] in events:
        return (1, 2 * events.index(name[len("hours_since_") :]) + 1, name)
    if name in fields:
        return (2, fields.index(name), name)
    return (3, 0, name)


class RuleData:
    """``export_rule_data`` indexed for widgets, plus the funnel's stage ids and known funnels."""

    def __init__(
        self,
        data: dict[str, Any],
        stage_ids: list[str],
        stage_names: dict[str, str],
        funnels: list[str],
        fields: list[str] | None = None,
        events: list[str] | None = None,
        labels: dict[str, Any] | None = None,
        vocabulary: Vocabulary | None = None,
    ):
        # ``labels``: the document's own label (a text or texts per language) of each field and event.
        # ``fields``: the funnel's custom field names in document order (variable lists end with them);
        # ``events``: its declared event names in document order (their variables come before the fields).
        fields, names = list(fields or []), list(events or [])
        self.variables = {
            v["name"]: v
            for v in sorted(
                data["variables"], key=lambda v: _variable_rank(v["name"], fields, names)
            )
        }
        self.operators = {t: ops for t, ops in data["variable_type_operators"].items()}
        self.actions = {a["name"]: a for a in data["actions"]}
        self.stage_ids = stage_ids
        self.stage_names = stage_names
        self.funnels = funnels
        self.labels = dict(labels or {})
        self.events = names
        #: the names a rule summary uses (``engine.document.summary``); stage names at least
        self.vocabulary = vocabulary or Vocabulary(stages=dict(stage_names))

    def var_label(self, name: str) -> str:
        """A variable as the reader reads it: the document's label in their language, else ours."""
        v = self.variables.get(name)
        if v is None:
            return _("{name} (unknown)").format(name=name)
        if label(self.labels.get(name)):
            return label(self.labels[name])
        event = name.removeprefix("hours_since_")
        if event != name and event in self.events:
            return _("Hours since: {event}").format(event=label(self.labels.get(event)) or event)
        return _(v["label"])

    def ops_for(self, name: str) -> list[dict[str, Any]]:
        v = self.variables.get(name)
        return self.operators.get(v["field_type"], []) if v else []

    def value_options(self, name: str) -> list[str]:
        if name == "stage":
            return list(self.stage_ids)
        v = self.variables.get(name)
        return list(v.get("options") or []) if v else []

    def stage_label(self, sid: str) -> str:
        name = label(self.stage_names.get(sid))
        return f"{name} ({sid})" if name and name != sid else sid


# -- reading conditions ------------------------------------------------------------------------------
def draft_conditions(raw: Any) -> AllOf | AnyOf | Condition | None:
    """The model of a draft rule's conditions; None when the tree is malformed (the validator says where)."""
    try:
        return parse(raw)
    except ValidationError:
        return None


def watched_stage(rule: dict[str, Any]) -> str | None:
    """The stage a rule watches: a top-level ``stage equal_to X`` (alone or inside the top ``all``)."""
    node = draft_conditions(rule.get("conditions"))
    top = [node] if isinstance(node, Condition) else node.all if isinstance(node, AllOf) else []
    for leaf in top:
        if isinstance(leaf, Condition) and leaf.name == "stage" and leaf.operator == "equal_to":
            return leaf.value if isinstance(leaf.value, str) else None
    return None


def move_targets(rule: dict[str, Any]) -> list[str]:
    return [
        a.get("params", {}).get("to_stage")
        for a in rule.get("actions", [])
        if a.get("name") == "move_to_stage" and a.get("params", {}).get("to_stage")
    ]


class _Sentence(Visitor[str]):
    """A condition tree as one line an owner can read."""

    def __init__(self, rd: RuleData):
        self.rd = rd

    def _join(self, parts: list[str], word: str) -> str:
        inner = word.join(f"({p})" if (" and " in p or " or " in p) else p for p in parts)
        return inner or _("(empty group)")

    def all_(self, node: Group, parts: list[str], path: str) -> str:
        return self._join(parts, " " + _("and") + " ")

    def any_(self, node: Group, parts: list[str], path: str) -> str:
        return self._join(parts, " " + _("or") + " ")

    def leaf(self, node: Condition, path: str) -> str:
        rd, name = self.rd, node.name
        o = {o["name"]: o for o in rd.ops_for(name)}.get(node.operator)
        sym = op_label(o) if o else str(node.operator)
        if o and o["input_type"] == "none":
            return f"{rd.var_label(name)} {sym}"
        value = node.value
        if name == "stage" and isinstance(value, str):
            value = label(rd.stage_names.get(value, value))
        return f"{rd.var_label(name)} {sym} {value}"


def describe_condition(conditions: Any, rd: RuleData) -> str:
    """One line an owner can read: ``Hours in stage ≥ 24 and (Budget … or …)``; "?" for a malformed tree."""
    node = conditions if isinstance(conditions, Group | Condition) else draft_conditions(conditions)
    return "?" if node is None else _Sentence(rd).visit(node)


def rule_summary(rule: Any, rd: RuleData, *, with_stage: bool = True) -> str:
    """The rule in the owner's words, in the interface language (``engine.document.summary``)."""
    return summarise(rule, rd.vocabulary, with_stage=with_stage)


def rule_summaries(rule: Any, rd: RuleData) -> tuple[str, str]:
    """The rule's line with and without "In <stage>" (one walk)."""
    return summarise_both(rule, rd.vocabulary)


def describe_action(action: dict[str, Any], rd: RuleData) -> str:
    decl = rd.actions.get(action.get("name", ""))
    title = _(decl["label"]) if decl else action.get("name", "?")
    params = action.get("params") or {}
    if action.get("name") == "move_to_stage":
        target = params.get("to_stage")
        return f"{title}: {label(rd.stage_names.get(target, target))}"
    shown = ", ".join(f"{k}={label(v) if isinstance(v, dict) else v}" for k, v in params.items())
    return f"{title} ({shown})" if shown else title


def high_priority(rule: dict[str, Any]) -> bool:
    return any((a.get("params") or {}).get("priority") == "high" for a in rule.get("actions", []))


# -- graph ---------------------------------------------------------------------------------------------
def stage_node_id(sid: str) -> str:
    return f"stage:{sid}"


def rule_node_id(rid: str) -> str:
    return f"rule:{rid}"


def graph_elements(
    doc: dict[str, Any], rd: RuleData, selected: str | None = None
) -> tuple[list, list]:
    """agraph nodes and edges for a document (positions fixed, titles escaped)."""
    from streamlit_agraph import Edge, Node

    nodes, edges = [], []
    stage_ids = {s["id"] for s in doc.get("stages", [])}
    for s in doc.get("stages", []):
        kind = s.get("kind", "open")
        pos = s.get("position") or {"x": 0, "y": 0}
        guard = (s.get("guard") or {}).get("required_fields") or []
        # Plain text with line breaks (the tooltip uses innerText); it starts with a fixed word because
        # the component window.open()s a title on double click and must never get a user URL.
        title = (
            _("Stage: {name}").format(name=esc(label(s["name"])))
            + f"\nid: {esc(s['id'])} · {esc(_(KIND_NAMES.get(kind, kind)))}"
            + (
                "\n" + _("required to enter: {fields}").format(fields=esc(", ".join(guard)))
                if guard
                else ""
            )
            + "\n"
            + _("click to edit")
        )
        nid = stage_node_id(s["id"])
        nodes.append(
            Node(
                id=nid,
                label=canvas_label(label(s["name"]), 40) + ("  🔒" if guard else ""),
                title=title,
                shape="box",
                x=pos["x"],
                y=pos["y"],
                size=30,
                color={
                    "background": KIND_COLOURS.get(kind, "#2563EB"),
                    "border": "#111827" if nid == selected else KIND_COLOURS.get(kind, "#2563EB"),
                },
                borderWidth=4 if nid == selected else 1,
                font={"color": "#FFFFFF", "size": 18, "face": "Inter, Arial"},
                margin=12,
                widthConstraint={"minimum": 120, "maximum": 200},
            )
        )
    for t in doc.get("transitions", []):
        if t.get("from") in stage_ids and t.get("to") in stage_ids:
            edges.append(
                Edge(
                    source=stage_node_id(t["from"]),
                    target=stage_node_id(t["to"]),
                    color="#64748B",
                    width=2,
                    arrows="to",
                    smooth={"type": "curvedCW", "roundness": 0.12},
                )
            )
    for r in doc.get("rules", []):
        pos = r.get("position") or {"x": 0, "y": 0}
        enabled = r.get("enabled", True)
        colour = RULE_HIGH_COLOUR if high_priority(r) else RULE_COLOUR
        if not enabled:
            colour = RULE_DISABLED_COLOUR
        nid = rule_node_id(r["id"])
        title = (
            # A fixed word first: the component window.open()s a title that starts with a URL.
            _("Rule: {name}").format(name=esc(label(r.get("name")) or r["id"]))
            + ("" if enabled else " " + _("(disabled)"))
            + "\n"
            + esc(canvas_label(rule_summary(r, rd), 400))
        )
        nodes.append(
            Node(
                # Fit-to-view zooms the canvas out to about half size: a larger font, wrapped onto two short
                # lines (widthConstraint), stays readable without running into the neighbouring rules.
                id=nid,
                label=canvas_label(label(r.get("name")) or r["id"], 30),
                title=title,
                shape="dot",
                size=14 if nid == selected else 9,
                x=pos["x"],
                y=pos["y"],
                color={"background": colour, "border": "#111827" if nid == selected else colour},
                borderWidth=3 if nid == selected else 1,
                font={
                    "size": 21,
                    "color": "#1F2937",
                    "face": "Inter, Arial",
                    "background": "rgba(255,255,255,0.85)",
                },
                widthConstraint={"maximum": 190},
            )
        )
        sid = watched_stage(r)
        if sid in stage_ids:
            edges.append(
                Edge(
                    source=nid,
                    target=stage_node_id(sid),
                    color="#FCD34D",
                    width=1,
                    arrows="",
                    dashes=True,
                )
            )
        for target in move_targets(r):
            if target in stage_ids:
                edges.append(
                    Edge(
                        source=nid,
                        target=stage_node_id(target),
                        color=colour,
                        width=2,
                        arrows="to",
                        dashes=[6, 4],
                        smooth={"type": "curvedCCW", "roundness": 0.2},
                    )
                )
    return nodes, edges


def graph_config(height: int = 560) -> Any:
    from streamlit_agraph import Config

    # Physics off: positions come from the document, so a rerun or a click never reshuffles the layout.
    return Config(
        width="100%",
        height=height,
        directed=True,
        physics=False,
        hierarchical=False,
        interaction={
            "hover": True,
            "dragNodes": False,
            "zoomView": True,
            "dragView": True,
            "tooltipDelay": 150,
        },
        nodes={"shadow": False},
        edges={"selectionWidth": 2},
    )

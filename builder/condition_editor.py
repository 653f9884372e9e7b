"""The rule editor's condition builder: a bordered box per all/any group, a row per condition.

Its walk is the condition model's ``Visitor`` (top-down); a group that is one of the common shapes
("Budget is still unanswered", ``engine.document.summary.common_shape``) is shown as one row.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from builder.components import RuleData, op_label
from builder.text import PATH_INDEX, esc, labels_key, problems_under, row_number
from engine.document.conditions import AllOf, AnyOf, Condition, Group, Visitor
from engine.document.summary import common_shape
from engine.errors import Problem
from engine.i18n import _

__all__ = ["condition_builder", "condition_row"]


# -- the condition builder -----------------------------------------------------------------------------
def _default_value(rd: RuleData, var: str, op: dict[str, Any]) -> Any:
    it = op["input_type"]
    if it == "numeric":
        return 24 if var.startswith("hours") else 0
    if it in ("select", "text") and rd.value_options(var):
        return rd.value_options(var)[0]
    # No variable is of business-rules' select_multiple type (see engine.validate), so its list-valued
    # operators are never offered and need no widget here.
    return None if it == "none" else ""


def _value_widget(rd: RuleData, var: str, op: dict[str, Any], value: Any, key: str) -> Any:
    it = op["input_type"]
    if it == "none":
        st.markdown("<div style='padding-top:0.5rem;color:#6B7280'>—</div>", unsafe_allow_html=True)
        return None
    if it == "numeric":
        start = value if isinstance(value, int | float) and not isinstance(value, bool) else 0
        out = st.number_input(
            _("Value"),
            value=float(start),
            step=1.0,
            format="%g",
            key=key,
            label_visibility="collapsed",
        )
        return int(out) if float(out).is_integer() else out
    options = rd.value_options(var)
    if options and (
        it == "select"
        or (var == "stage" and op["name"] in ("equal_to", "equal_to_case_insensitive"))
    ):
        if isinstance(value, str) and value not in options:
            options = [*options, value]  # keep an unknown value visible so its error can be read
        idx = options.index(value) if value in options else 0
        fmt = rd.stage_label if var == "stage" else str
        return st.selectbox(
            _("Value"),
            options,
            index=idx,
            key=f"{key}:{labels_key(map(fmt, options))}",
            format_func=fmt,
            label_visibility="collapsed",
        )
    return st.text_input(
        _("Value"),
        value=value if isinstance(value, str) else "",
        key=key,
        label_visibility="collapsed",
    )


class _ConditionEditor(Visitor[AllOf | AnyOf | Condition | None]):
    """The condition builder's walk: top-down, a bordered box per group, a row per leaf.

    Each node returns its edited form (None: removed). Widget keys follow the JSON path
    (``conditions.all[1].any[0]`` → ``<key>.1.0``), so a row keeps its key across reruns. A
    structural change (a row or group added or removed) is kept in ``change``.
    """

    def __init__(
        self, rd: RuleData, key: str, root: str, problems: list[Problem], compact: bool = True
    ):
        self.rd, self.key, self.root, self.problems = rd, key, root, problems
        self.compact = compact
        self.change: str | None = None

    def key_of(self, path: str) -> str:
        return self.key + "".join(f".{i}" for i in PATH_INDEX.findall(path[len(self.root) :]))

    def group(self, node: Group, path: str) -> AllOf | AnyOf | None:
        key, depth = self.key_of(path), len(PATH_INDEX.findall(path[len(self.root) :]))
        shape = common_shape(node, self.rd.vocabulary) if self.compact and depth > 0 else None
        if shape is not None and isinstance(node, AllOf | AnyOf):
            return self._shape_row(node, shape, key, path)
        kind = node.kind
        children: list[Any] = list(self.children(node, path))
        with st.container(border=True):
            head = st.columns([3, 1.3, 1.3, 1])
            label = {"all": _("ALL of these are true"), "any": _("ANY of these is true")}
            new_kind = head[0].radio(
                _("Group"),
                ["all", "any"],
                index=0 if kind == "all" else 1,
                horizontal=True,
                format_func=label.get,
                key=f"{key}:kind",
                label_visibility="collapsed",
            )
            added: list[AllOf | AnyOf | Condition] = []
            if head[1].button(
                "+ " + _("Condition"),
                key=f"{key}:addc",
                help=_("Add a condition row to this group"),
            ):
                added.append(
                    Condition(name="hours_in_stage", operator="greater_than_or_equal_to", value=24)
                )
                self.change = _("added a condition")
            if depth < 4 and head[2].button(
                "+ " + _("Group"), key=f"{key}:addg", help=_("Add a nested all/any group")
            ):
                added.append(
                    AnyOf(any=[Condition(name="has_manager", operator="is_true", value=None)])
                )
                self.change = _("added a group")
            if depth > 0 and head[3].button(
                "✕ " + _("Group"), key=f"{key}:delg", help=_("Remove this whole group")
            ):
                self.change = _("removed a group")
                return None
            for p in problems_under(self.problems, path):
                if p.path in (path, f"{path}.{kind}"):
                    st.error(f"{p.message}")
            kept = [
                edited
                for edited in (self.visit(child, child_path) for child_path, child in children)
                if edited is not None
            ]
        items = [*kept, *added]
        return AllOf(all=items) if new_kind == "all" else AnyOf(any=items)

    def _shape_row(
        self, node: AllOf | AnyOf, shape: str, key: str, path: str
    ) -> AllOf | AnyOf | None:
        """A common shape ("Budget is still unanswered") as one row, kept as it is unless removed."""
        cols = st.columns([0.35, 6.6, 0.45])
        cols[0].markdown(
            f"<div style='padding-top:0.45rem;color:#6B7280;font-size:0.8rem'>{row_number(path.split('conditions', 1)[-1])}</div>",
            unsafe_allow_html=True,
        )
        cols[1].markdown(
            "<div style='padding:0.45rem 0.7rem;background:#FFFBEB;border:1px solid #FCD34D;"
            f"border-radius:6px'>{esc(shape)}</div>",
            unsafe_allow_html=True,
        )
        if cols[2].button("✕", key=f"{key}:delshape", help="Remove this condition"):
            self.change = "removed a condition"
            return None
        for p in problems_under(self.problems, path):
            st.error(f"Row {row_number(path.split('conditions', 1)[-1])}: {p.message}")
        return node

    def leaf(self, node: Condition, path: str) -> Condition | None:
        leaf, removed = condition_row(node, self.rd, self.key_of(path), path, self.problems)
        if removed:
            self.change = _("removed a condition")
            return None
        return leaf


def condition_builder(
    node: Group,
    rd: RuleData,
    key: str,
    path: str,
    problems: list[Problem],
    compact: bool = True,
) -> tuple[AllOf | AnyOf, str | None]:
    """Render a group (all/any with children) and return ``(new group, structural change or None)``.

    A structural change (add/remove a row or group) is returned as a message; the caller applies
    the new group, bumps its widget generation and reruns so row keys never point at shifted rows.
    """
    editor = _ConditionEditor(rd, key, path, problems, compact)
    edited = editor.visit(node, path)
    return (edited if isinstance(edited, AllOf | AnyOf) else AllOf(all=[])), editor.change


def condition_row(
    node: Condition, rd: RuleData, key: str, path: str, problems: list[Problem]
) -> tuple[Condition, bool]:
    """One ``variable → operator → value`` row; returns the new leaf and whether it was removed."""
    cols = st.columns([0.35, 2.6, 1.6, 2.4, 0.45])
    cols[0].markdown(
        f"<div style='padding-top:0.45rem;color:#6B7280;font-size:0.8rem'>{row_number(path.split('conditions', 1)[-1])}</div>",
        unsafe_allow_html=True,
    )
    names = list(rd.variables)
    var = node.name
    if var not in names:
        names = [*names, str(var)]
    with cols[1]:
        var = st.selectbox(
            _("Variable"),
            names,
            index=names.index(str(var)),
            key=f"{key}:var",
            format_func=rd.var_label,
            label_visibility="collapsed",
        )
    ops = rd.ops_for(var)
    op_names = [o["name"] for o in ops]
    op_name = node.operator if node.operator in op_names else (op_names[0] if op_names else "")
    with cols[2]:
        if ops:
            op_name = st.selectbox(
                _("Operator"),
                op_names,
                index=op_names.index(op_name),
                key=f"{key}:op:{var}",
                format_func=lambda n: op_label(next(o for o in ops if o["name"] == n)),
                label_visibility="collapsed",
            )
        else:
            st.caption(_("no operators"))
    op = next((o for o in ops if o["name"] == op_name), None)
    value = node.value
    with cols[3]:
        if op is not None:
            if var != node.name or op_name != node.operator:
                value = (
                    _default_value(rd, var, op)
                    if (var != node.name or op["input_type"] == "none")
                    else value
                )
            value = _value_widget(rd, var, op, value, f"{key}:val:{var}:{op_name}")
    removed = cols[4].button("✕", key=f"{key}:del", help=_("Remove this condition"))
    for p in problems_under(problems, path):
        st.error(
            _("Row {row}: {problem}").format(
                row=row_number(path.split("conditions", 1)[-1]), problem=p.message
            )
        )
    return Condition(name=var, operator=op_name, value=value), removed

"""Builder page: dry run: which rules would fire for a deal at a chosen moment, and why.

Reads only: ``Conveyor.dry_run`` evaluates a real deal (or a made-up one) with each condition's actual
value and records nothing, so an owner can try "what happens in 48 hours" on live data safely.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from builder.components import OP_SYMBOLS
from builder.state import get_reader, page_boundary
from builder.views.deals import field_widgets, funnel_picker, md
from engine.core import reports
from engine.document.ruleset import RuleSet
from engine.document.template import render as render_template
from engine.errors import ConveyorError
from engine.rules.evaluators.reference import RuleTrace, occurrence
from engine.rules.variables import variables_class

KEY = "dry_"  # session keys of this page
MOMENTS = {"now": 0.0, "+24 h": 24.0, "+48 h": 48.0, "+90 days": 90 * 24.0, "custom": None}


@page_boundary
def render() -> None:
    st.title("🧪 Dry run")
    st.caption(
        "See which rules would fire for a deal at a given moment, and the value behind every "
        "condition. Nothing is executed or recorded."
    )
    conveyor = get_reader()  # a dry run only reads
    top = st.columns([2, 2, 3], vertical_alignment="bottom")
    with top[0]:
        funnel = funnel_picker(conveyor, KEY + "funnel")
    if funnel is None:
        return
    rs = conveyor.ruleset(funnel)
    with top[1]:
        mode = (
            st.segmented_control(
                "Deal", ["Existing deal", "Sample deal"], default="Existing deal", key=KEY + "mode"
            )
            or "Existing deal"
        )
    with top[2]:
        moment = (
            st.segmented_control("Moment", list(MOMENTS), default="now", key=KEY + "moment")
            or "now"
        )
    offset = MOMENTS[moment]
    if offset is None:
        offset = st.number_input(
            "Hours from now",
            min_value=0.0,
            max_value=24.0 * 3650,
            value=12.0,
            step=1.0,
            key=KEY + "custom_hours",
        )
    now = conveyor.clock.now()
    at = now + timedelta(hours=offset)

    fired: set[tuple[str, str]] = set()
    if mode == "Existing deal":
        board = conveyor.reports.deal_board(funnel)
        if board.empty:
            st.info(
                "This funnel has no deals yet: try a sample deal, or create one on the Deals page."
            )
            return
        labels = {int(r.id): f"{r.key} · {r.title} · {r.stage_name}" for r in board.itertuples()}
        deal_id = st.selectbox(
            "Deal", list(labels), format_func=lambda i: labels[i], key=KEY + "deal"
        )
        try:
            state = conveyor.deal(int(deal_id))
        except ConveyorError as exc:
            st.error(md(str(exc)))
            return
        fired = conveyor.reports.fired_occurrences(state.id)
    else:
        state = _sample(rs, now)

    try:
        traces = conveyor.dry_run(state, at)
    except ConveyorError as exc:
        st.error(md(str(exc)))
        return
    _results(rs, state, traces, fired, at, offset)


def _sample(rs: RuleSet, now: Any) -> Any:
    """A made-up deal: stage, field values and how long ago each thing happened (counted from now)."""
    with st.container(border=True):
        st.markdown("**Sample deal** — every “hours ago” is counted back from now.")
        c = st.columns(4)
        stage = c[0].selectbox(
            "Stage",
            [s.id for s in rs.stages],
            format_func=lambda s: rs.stage(s).name,
            key=KEY + "s_stage",
        )
        in_stage = c[1].number_input(
            "Hours in stage", min_value=0.0, value=0.0, step=1.0, key=KEY + "s_in_stage"
        )
        created = c[2].number_input(
            "Hours since created", min_value=0.0, value=0.0, step=1.0, key=KEY + "s_created"
        )
        amount = c[3].number_input(
            "Amount", min_value=0.0, value=None, step=1000.0, key=KEY + "s_amount"
        )
        c = st.columns(4)
        has_manager = c[0].checkbox("Has a manager", value=True, key=KEY + "s_manager")
        acted = c[0].checkbox("Manager acted", key=KEY + "s_acted")
        activity = c[0].number_input(
            "… hours ago",
            min_value=0.0,
            value=0.0,
            step=1.0,
            key=KEY + "s_activity",
            disabled=not acted,
        )
        happened: dict[str, float | None] = {}
        if rs.events:
            st.markdown("**Events in this stage visit**")
            c = st.columns(4)
            for i, ev in enumerate(rs.events):
                col = c[i % 4]
                on = col.checkbox(reports.event_label(rs, ev.name), key=f"{KEY}s_ev_{ev.name}")
                hours = col.number_input(
                    "… hours ago",
                    min_value=0.0,
                    value=0.0,
                    step=1.0,
                    key=f"{KEY}s_ev_{ev.name}_h",
                    disabled=not on,
                )
                happened[ev.name] = hours if on else None
        fields: dict[str, Any] = {}
        if rs.fields:
            st.markdown("**Fields**")
            fields = {
                k: v
                for k, v in field_widgets(rs.fields, {}, KEY + "s_f_", columns=4).items()
                if v is not None
            }
    return reports.sample_deal(
        rs.funnel,
        stage,
        now,
        hours_in_stage=in_stage,
        hours_since_created=created,
        hours_since_last_activity=activity if acted else None,
        events=happened,
        has_manager=has_manager,
        amount=amount,
        fields=fields,
    )


def _results(
    rs: RuleSet,
    state: Any,
    traces: list[RuleTrace],
    fired: set[tuple[str, str]],
    at: Any,
    offset: float,
) -> None:
    labels = {v["name"]: v["label"] for v in variables_class(rs).get_all_variables()}
    stage = rs.stage(state.stage)
    values = state.template_values(stage.name if stage else state.stage, rs.name)
    would = [t for t in traces if t.fires and (t.rule.id, occurrence(t.rule, state)) not in fired]
    repeats = [t for t in traces if t.fires and (t.rule.id, occurrence(t.rule, state)) in fired]
    when = "now" if offset == 0 else f"in {reports.hours_text(offset)}"
    st.markdown(f"#### At {reports.to_display(at)} ({when}, {reports.display_zone().key})")
    m = st.columns(3)
    m[0].metric("Would fire", len(would))
    m[1].metric(
        "Conditions hold, already fired",
        len(repeats),
        help="The rule fired for this occurrence already (its repeat policy keeps it from firing again).",
    )
    m[2].metric("Not firing", len(traces) - len(would) - len(repeats))
    order = sorted(
        traces, key=lambda t: (not t.fires, (t.rule.id, occurrence(t.rule, state)) in fired)
    )
    for t in order:
        already = (t.rule.id, occurrence(t.rule, state)) in fired
        name = md(t.rule.name or t.rule.id)  # expander labels are Markdown: show the name as typed
        if not t.rule.enabled:
            head = f"⏸️ {name} — disabled"
        elif t.fires and not already:
            head = f"✅ {name} — would fire"
        elif t.fires:
            head = f"☑️ {name} — holds, already fired"
        else:
            failed = sum(1 for c in t.conditions if not c.result)
            head = f"⬜ {name} — not now ({failed} condition{'s' if failed != 1 else ''} false)"
        with st.expander(head, expanded=t.fires and not already):
            rows = [
                {
                    "": "✅" if c.result else "❌",
                    "Condition": labels.get(c.name, c.name),
                    "Test": f"{OP_SYMBOLS.get(c.operator, c.operator)} {_value(c.value)}".strip(),
                    "Actual value": _value(c.actual),
                    "Where": c.path,
                }
                for c in t.conditions
            ]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
            if t.fires and t.actions:
                st.markdown(
                    "**Would do:** "
                    + "; ".join(
                        f"`{a.name}` {md(reports.action_summary(a.name, _filled(a.params, values)))}"
                        for a in t.actions
                    )
                )
            elif not t.fires:
                st.caption("Would do: " + ", ".join(f"`{a.name}`" for a in t.rule.actions))
            st.caption(f"Rule `{t.rule.id}` · repeat: {t.rule.repeat.value.replace('_', ' ')}")


def _filled(params: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Action params with message templates filled from the deal, as the engine would send them."""
    out = dict(params)
    for name in ("title", "text"):
        if isinstance(out.get(name), str):
            try:
                out[name] = render_template(out[name], values)
            except ValueError:
                pass  # a draft's broken template: show it as written
    return out


def _value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.1f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) or "(none)"
    return str(v)

"""Builder page: dry run: which rules would fire for a deal at a chosen moment, and why.

Reads only: ``Conveyor.dry_run`` evaluates a real deal (or a made-up one) with each condition's actual
value and records nothing, so an owner can try "what happens in 48 hours" on live data safely.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from builder.components import OP_SYMBOLS, REPEAT_LABELS
from builder.state import funnel_names, get_reader, page_boundary
from builder.views.deals import field_widgets, funnel_picker, md
from engine.core import reports
from engine.document.labels import label
from engine.document.ruleset import RuleSet
from engine.document.summary import Vocabulary, summarise
from engine.document.template import render as render_template
from engine.errors import ConveyorError
from engine.i18n import N_, _, format_datetime, ngettext
from engine.rules.evaluators.reference import RuleTrace, occurrence
from engine.rules.variables import variables_class

KEY = "dry_"  # session keys of this page
MOMENTS = {"now": 0.0, "+24 h": 24.0, "+48 h": 48.0, "+90 days": 90 * 24.0, "custom": None}
MOMENT_LABELS = {
    "now": N_("now"),
    "+24 h": N_("+24 h"),
    "+48 h": N_("+48 h"),
    "+90 days": N_("+90 days"),
    "custom": N_("custom"),
}
#: The choices are kept in English (the widget's value), shown translated.
MODES = [N_("Existing deal"), N_("Sample deal")]


@page_boundary
def render() -> None:
    st.title("🧪 " + _("Dry run"))
    st.caption(
        _(
            "See which rules would fire for a deal at a given moment, and the value behind every "
            "condition. Nothing is executed or recorded."
        )
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
                _("Deal"),
                MODES,
                default=MODES[0],
                format_func=_,
                key=KEY + "mode",
            )
            or MODES[0]
        )
    with top[2]:
        moment = (
            st.segmented_control(
                _("Moment"),
                list(MOMENTS),
                default="now",
                format_func=lambda m: _(MOMENT_LABELS[m]),
                key=KEY + "moment",
            )
            or "now"
        )
    offset = MOMENTS[moment]
    if offset is None:
        offset = st.number_input(
            _("Hours from now"),
            min_value=0.0,
            max_value=24.0 * 3650,
            value=12.0,
            step=1.0,
            key=KEY + "custom_hours",
        )
    now = conveyor.clock.now()
    at = now + timedelta(hours=offset)

    fired: set[tuple[str, str]] = set()
    if mode == MODES[0]:
        board = conveyor.reports.deal_board(funnel)
        if board.empty:
            st.info(
                _(
                    "This funnel has no deals yet: try a sample deal, or create one on the Deals page."
                )
            )
            return
        labels = {int(r.id): f"{r.key} · {r.title} · {r.stage_name}" for r in board.itertuples()}
        deal_id = st.selectbox(
            _("Deal"), list(labels), format_func=lambda i: labels[i], key=KEY + "deal"
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
    _results(rs, state, traces, fired, at, offset, Vocabulary.of(rs, funnel_names()))


def _sample(rs: RuleSet, now: Any) -> Any:
    """A made-up deal: stage, field values and how long ago each thing happened (counted from now)."""
    with st.container(border=True):
        st.markdown(_("**Sample deal** — every “hours ago” is counted back from now."))
        c = st.columns(4)
        stage = c[0].selectbox(
            _("Stage"),
            [s.id for s in rs.stages],
            format_func=lambda s: label(rs.stage(s).name),
            key=KEY + "s_stage",
        )
        in_stage = c[1].number_input(
            _("Hours in stage"), min_value=0.0, value=0.0, step=1.0, key=KEY + "s_in_stage"
        )
        created = c[2].number_input(
            _("Hours since created"), min_value=0.0, value=0.0, step=1.0, key=KEY + "s_created"
        )
        amount = c[3].number_input(
            _("Amount"), min_value=0.0, value=None, step=1000.0, key=KEY + "s_amount"
        )
        c = st.columns(4)
        has_manager = c[0].checkbox(_("Has a manager"), value=True, key=KEY + "s_manager")
        acted = c[0].checkbox(_("Manager acted"), key=KEY + "s_acted")
        activity = c[0].number_input(
            _("… hours ago"),
            min_value=0.0,
            value=0.0,
            step=1.0,
            key=KEY + "s_activity",
            disabled=not acted,
        )
        happened: dict[str, float | None] = {}
        if rs.events:
            st.markdown("**" + _("Events in this stage visit") + "**")
            c = st.columns(4)
            for i, ev in enumerate(rs.events):
                col = c[i % 4]
                on = col.checkbox(reports.event_label(rs, ev.name), key=f"{KEY}s_ev_{ev.name}")
                hours = col.number_input(
                    _("… hours ago"),
                    min_value=0.0,
                    value=0.0,
                    step=1.0,
                    key=f"{KEY}s_ev_{ev.name}_h",
                    disabled=not on,
                )
                happened[ev.name] = hours if on else None
        fields: dict[str, Any] = {}
        if rs.fields:
            st.markdown("**" + _("Fields") + "**")
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
    vocabulary: Vocabulary,
) -> None:
    labels = {v["name"]: _(v["label"]) for v in variables_class(rs).get_all_variables()}
    labels.update({f.name: label(f.label) for f in rs.fields if f.label})
    for ev in rs.events:
        labels[ev.name] = reports.event_label(rs, ev.name)
        labels[f"hours_since_{ev.name}"] = _("Hours since: {event}").format(
            event=reports.event_label(rs, ev.name)
        )
    stage = rs.stage(state.stage)
    values = state.template_values(label(stage.name) if stage else state.stage, label(rs.name))
    would = [t for t in traces if t.fires and (t.rule.id, occurrence(t.rule, state)) not in fired]
    repeats = [t for t in traces if t.fires and (t.rule.id, occurrence(t.rule, state)) in fired]
    when = _("now") if offset == 0 else _("in {time}").format(time=reports.hours_text(offset))
    zone = reports.display_zone()
    st.markdown(
        "#### "
        + _("At {moment} ({when}, {zone})").format(
            moment=format_datetime(at, zone, "short"), when=when, zone=zone.key
        )
    )
    m = st.columns(3)
    m[0].metric(_("Would fire"), len(would))
    m[1].metric(
        _("Conditions hold, already fired"),
        len(repeats),
        help=_(
            "The rule fired for this occurrence already (its repeat policy keeps it from firing again)."
        ),
    )
    m[2].metric(_("Not firing"), len(traces) - len(would) - len(repeats))
    order = sorted(
        traces, key=lambda t: (not t.fires, (t.rule.id, occurrence(t.rule, state)) in fired)
    )
    for t in order:
        already = (t.rule.id, occurrence(t.rule, state)) in fired
        # The heading is the rule in the owner's words; expander labels are Markdown: shown as typed.
        name = md(summarise(t.rule, vocabulary))
        if not t.rule.enabled:
            head = "⏸️ " + _("{rule} — disabled").format(rule=name)
        elif t.fires and not already:
            head = "✅ " + _("{rule} — would fire").format(rule=name)
        elif t.fires:
            head = "☑️ " + _("{rule} — holds, already fired").format(rule=name)
        else:
            failed = sum(1 for c in t.conditions if not c.result)
            head = "⬜ " + ngettext(
                "{rule} — not now ({count} condition false)",
                "{rule} — not now ({count} conditions false)",
                failed,
            ).format(rule=name, count=failed)
        with st.expander(head, expanded=t.fires and not already):
            rows = [
                {
                    "": "✅" if c.result else "❌",
                    _("Condition"): labels.get(c.name, c.name),
                    _("Test"): f"{_op(c.operator)} {_value(c.value)}".strip(),
                    _("Actual value"): _value(c.actual),
                    _("Where"): c.path,
                }
                for c in t.conditions
            ]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
            if t.fires and t.actions:
                st.markdown(
                    "**"
                    + _("Would do:")
                    + "** "
                    + "; ".join(
                        f"`{a.name}` {md(reports.action_summary(a.name, _filled(a.params, values)))}"
                        for a in t.actions
                    )
                )
            elif not t.fires:
                st.caption(_("Would do:") + " " + ", ".join(f"`{a.name}`" for a in t.rule.actions))
            st.caption(
                md(label(t.rule.name) or t.rule.id)
                + " · "
                + _("Rule `{id}` · repeat: {policy}").format(
                    id=t.rule.id, policy=_(REPEAT_LABELS.get(t.rule.repeat.value, ""))
                )
            )


def _filled(params: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Action params with message templates filled from the deal, as the engine would send them."""
    out = dict(params)
    for name in ("title", "text"):
        if isinstance(out.get(name), dict):  # a template per language: the reader's one
            out[name] = label(out[name])
        if isinstance(out.get(name), str):
            try:
                out[name] = render_template(out[name], values)
            except ValueError:
                pass  # a draft's broken template: show it as written
    return out


def _op(operator: str) -> str:
    symbol = OP_SYMBOLS.get(operator)
    return _(symbol) if symbol else operator


def _value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return _("yes") if v else _("no")
    if isinstance(v, float):
        return f"{v:.1f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) or _("(none)")
    return str(v)

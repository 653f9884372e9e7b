"""Builder page: analytics: funnel conversion, time in stage, stuck deals, rule firings, overdue tasks.

Numbers come from ``engine.core.reports`` (pandas over the deal history); charts are Altair so stage names
keep the funnel's order and read as the owner typed them.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from builder.state import get_reader, page_boundary
from builder.views.deals import funnel_picker, local_times, md, money
from engine.core import reports
from engine.document.labels import label
from engine.i18n import _, ngettext

KEY = "an_"  # session keys of this page
KIND_COLOURS = alt.Scale(domain=["open", "won", "lost"], range=["#2563EB", "#16A34A", "#DC2626"])


@page_boundary
def render() -> None:
    st.title("📈 " + _("Analytics"))
    conveyor = get_reader()  # this page only reads
    funnel = funnel_picker(conveyor, KEY + "funnel")
    if funnel is None:
        return
    rs = conveyor.ruleset(funnel)
    now = conveyor.clock.now()
    total = conveyor.reports.summary(funnel, now)
    closed = total.won_deals + total.lost_deals
    m = st.columns(5)
    m[0].metric(_("Open deals"), total.open_deals)
    m[1].metric(_("Won"), total.won_deals)
    m[2].metric(_("Lost"), total.lost_deals)
    m[3].metric(_("Win rate (closed deals)"), f"{total.won_deals / closed:.0%}" if closed else "—")
    m[4].metric(_("Overdue tasks"), total.overdue_tasks)

    st.subheader(_("Conversion"))
    reach = conveyor.reports.stage_reach(funnel)
    conv = conveyor.reports.conversion(funnel)
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**" + _("Deals that reached each stage") + "**")
        if reach["deals"].sum() == 0:
            st.caption(_("No deals yet."))
        else:
            order = reach["stage_name"].tolist()
            bars = (
                alt.Chart(reach)
                .mark_bar(cornerRadiusEnd=4)
                .encode(
                    x=alt.X("deals:Q", title=_("Deals"), axis=alt.Axis(tickMinStep=1, format="d")),
                    y=alt.Y("stage_name:N", sort=order, title=None),
                    color=alt.Color("kind:N", scale=KIND_COLOURS, legend=None),
                    tooltip=[
                        alt.Tooltip("stage_name:N", title=_("Stage")),
                        alt.Tooltip("deals:Q", title=_("Deals")),
                        alt.Tooltip("share:Q", title=_("Of the widest stage"), format=".0%"),
                    ],
                )
            )
            text = bars.mark_text(align="left", dx=4).encode(
                text="deals:Q", color=alt.value("#374151")
            )
            st.altair_chart((bars + text).properties(height=alt.Step(30)), width="stretch")
    with right:
        st.markdown("**" + _("Stage → stage conversion") + "**")
        if conv.empty:
            st.caption(_("No deal has changed stage yet."))
        else:
            chart = (
                alt.Chart(conv)
                .mark_bar(cornerRadiusEnd=4, color="#7C3AED")
                .encode(
                    x=alt.X(
                        "rate:Q",
                        title=_("Share of the deals that entered the first stage"),
                        axis=alt.Axis(format="%"),
                        scale=alt.Scale(domain=[0, 1]),
                    ),
                    y=alt.Y(
                        "transition:N",
                        sort=conv["transition"].tolist(),
                        title=None,
                        axis=alt.Axis(labelLimit=280),
                    ),
                    tooltip=[
                        alt.Tooltip("transition:N", title=_("Move")),
                        alt.Tooltip("deals:Q", title=_("Deals")),
                        alt.Tooltip("entered_from:Q", title=_("Entered the first stage")),
                        alt.Tooltip("rate:Q", title=_("Conversion"), format=".0%"),
                    ],
                )
            )
            rates = chart.mark_text(align="left", dx=4, color="#374151").encode(
                text=alt.Text("rate:Q", format=".0%")
            )
            st.altair_chart((chart + rates).properties(height=alt.Step(30)), width="stretch")
    with st.expander(_("Conversion table")):
        st.dataframe(
            conv[["from_name", "to_name", "deals", "entered_from", "rate"]],
            hide_index=True,
            width="stretch",
            column_config={
                "from_name": _("From"),
                "to_name": _("To"),
                "deals": _("Deals moved"),
                "entered_from": _("Deals that entered 'From'"),
                "rate": st.column_config.ProgressColumn(
                    _("Conversion"), format="percent", min_value=0, max_value=1
                ),
            },
        )

    st.subheader(_("Time"))
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**" + _("Average time in each stage (hours)") + "**")
        times = conveyor.reports.time_in_stage(funnel, now)
        times = times[times["visits"] > 0]
        if times.empty:
            st.caption(_("No stays recorded yet."))
        else:
            times = times.assign(
                avg=times["avg_hours"].round(1), readable=times["avg_hours"].map(reports.hours_text)
            )
            chart = (
                alt.Chart(times)
                .mark_bar(cornerRadiusEnd=4, color="#0EA5E9")
                .encode(
                    x=alt.X("avg:Q", title=_("Hours (stays still running count up to now)")),
                    y=alt.Y("stage_name:N", sort=times["stage_name"].tolist(), title=None),
                    tooltip=[
                        alt.Tooltip("stage_name:N", title=_("Stage")),
                        alt.Tooltip("readable:N", title=_("Average")),
                        alt.Tooltip("visits:Q", title=_("Stays")),
                        alt.Tooltip("finished:Q", title=_("Finished")),
                    ],
                )
            )
            st.altair_chart(chart.properties(height=alt.Step(30)), width="stretch")
    with right:
        threshold = st.slider(
            _("Stuck: longer in one stage than (hours)"),
            min_value=1,
            max_value=24 * 30,
            value=48,
            step=1,
            key=KEY + "stuck",
        )
        stuck = conveyor.reports.stuck_deals(funnel, threshold, now)
        st.markdown(
            "**"
            + ngettext(
                "{count} open deal stuck longer than {time}",
                "{count} open deals stuck longer than {time}",
                len(stuck),
            ).format(count=len(stuck), time=reports.hours_text(threshold))
            + "**"
        )
        if stuck.empty:
            st.caption(_("None: every open deal moved on in time."))
        else:
            stuck = stuck.assign(
                label=stuck["key"] + " · " + stuck["title"],
                hours=stuck["hours_in_stage"].round(1),
                waited=stuck["hours_in_stage"].map(reports.hours_text),
            )
            chart = (
                alt.Chart(stuck)
                .mark_bar(cornerRadiusEnd=4, color="#F97316")
                .encode(
                    x=alt.X("hours:Q", title=_("Hours in the current stage")),
                    y=alt.Y("label:N", sort="-x", title=None, axis=alt.Axis(labelLimit=220)),
                    tooltip=[
                        alt.Tooltip("label:N", title=_("Deal")),
                        alt.Tooltip("stage_name:N", title=_("Stage")),
                        alt.Tooltip("waited:N", title=_("Waiting")),
                        alt.Tooltip("manager:N", title=_("Manager")),
                    ],
                )
            )
            rule = (
                alt.Chart(pd.DataFrame({"t": [threshold]}))
                .mark_rule(color="#DC2626", strokeDash=[4, 4])
                .encode(x="t:Q")
            )
            st.altair_chart((chart + rule).properties(height=alt.Step(28)), width="stretch")
            st.dataframe(
                stuck[["key", "title", "stage_name", "manager", "waited", "amount"]].assign(
                    amount=stuck["amount"].map(lambda a: money(a, rs.currency))
                ),
                hide_index=True,
                width="stretch",
                column_config={
                    "key": _("Deal"),
                    "title": _("Title"),
                    "stage_name": _("Stage"),
                    "manager": _("Manager"),
                    "waited": _("In stage"),
                    "amount": _("Amount"),
                },
            )

    st.subheader(_("Rules and managers"))
    st.markdown("**" + _("Rule firings per week") + "**")
    weekly = conveyor.reports.firings_per_week(funnel)
    if weekly.empty:
        st.caption(_("No rule has fired yet."))
    else:
        rules_order = (
            weekly.groupby("rule")["firings"].sum().sort_values(ascending=False).index.tolist()
        )
        chart = (
            alt.Chart(weekly)
            .mark_bar(cornerRadiusEnd=3)
            .encode(
                x=alt.X(
                    "sum(firings):Q", title=_("Firings"), axis=alt.Axis(tickMinStep=1, format="d")
                ),
                y=alt.Y("rule:N", sort=rules_order, title=None, axis=alt.Axis(labelLimit=360)),
                color=alt.Color(
                    "week:O",
                    title=_("Week starting"),
                    scale=alt.Scale(scheme="blues"),
                    legend=alt.Legend(orient="right"),
                ),
                tooltip=[
                    alt.Tooltip("week:O", title=_("Week starting")),
                    alt.Tooltip("rule:N", title=_("Rule")),
                    alt.Tooltip("firings:Q", title=_("Firings")),
                ],
            )
        )
        st.altair_chart(chart.properties(height=alt.Step(24)), width="stretch")
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.markdown("**" + _("Overdue tasks per manager") + "**")
        overdue = conveyor.reports.overdue_by_manager(funnel, now)
        if overdue.empty:
            st.caption(_("No overdue tasks. 🎉"))
        else:
            long = overdue.assign(normal=overdue["overdue"] - overdue["high"]).melt(
                id_vars="manager",
                value_vars=["high", "normal"],
                var_name="priority",
                value_name="tasks",
            )
            chart = (
                alt.Chart(long)
                .mark_bar(cornerRadiusEnd=4)
                .encode(
                    x=alt.X(
                        "sum(tasks):Q",
                        title=_("Overdue tasks"),
                        axis=alt.Axis(tickMinStep=1, format="d"),
                    ),
                    y=alt.Y("manager:N", sort=overdue["manager"].tolist(), title=None),
                    color=alt.Color(
                        "priority:N",
                        scale=alt.Scale(domain=["high", "normal"], range=["#DC2626", "#9CA3AF"]),
                        legend=alt.Legend(orient="top", title=None),
                    ),
                    tooltip=[
                        alt.Tooltip("manager:N", title=_("Manager")),
                        alt.Tooltip("priority:N", title=_("Priority")),
                        alt.Tooltip("tasks:Q", title=_("Overdue")),
                    ],
                )
            )
            st.altair_chart(chart.properties(height=alt.Step(32)), width="stretch")
    with right:
        st.markdown("**" + _("Overdue tasks") + "**")
        queue = conveyor.reports.task_queue(funnel=funnel, overdue_only=True, now=now)
        st.dataframe(
            local_times(queue, ["due_at"])[["manager", "title", "priority", "due_at", "deal_key"]],
            hide_index=True,
            width="stretch",
            column_config={
                "manager": _("Manager"),
                "title": _("Task"),
                "priority": _("Priority"),
                "due_at": _("Was due"),
                "deal_key": _("Deal"),
            },
        )
    st.caption(
        _("Funnel “{funnel}” · times in {zone} · weeks start on Monday.").format(
            funnel=md(label(rs.name)), zone=reports.display_zone().key
        )
    )

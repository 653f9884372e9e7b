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

KEY = "an_"  # session keys of this page
KIND_COLOURS = alt.Scale(domain=["open", "won", "lost"], range=["#2563EB", "#16A34A", "#DC2626"])


@page_boundary
def render() -> None:
    st.title("📈 Analytics")
    conveyor = get_reader()  # this page only reads
    funnel = funnel_picker(conveyor, KEY + "funnel")
    if funnel is None:
        return
    rs = conveyor.ruleset(funnel)
    now = conveyor.clock.now()
    total = conveyor.reports.summary(funnel, now)
    closed = total.won_deals + total.lost_deals
    m = st.columns(5)
    m[0].metric("Open deals", total.open_deals)
    m[1].metric("Won", total.won_deals)
    m[2].metric("Lost", total.lost_deals)
    m[3].metric("Win rate (closed deals)", f"{total.won_deals / closed:.0%}" if closed else "—")
    m[4].metric("Overdue tasks", total.overdue_tasks)

    st.subheader("Conversion")
    reach = conveyor.reports.stage_reach(funnel)
    conv = conveyor.reports.conversion(funnel)
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Deals that reached each stage**")
        if reach["deals"].sum() == 0:
            st.caption("No deals yet.")
        else:
            order = reach["stage_name"].tolist()
            bars = (
                alt.Chart(reach)
                .mark_bar(cornerRadiusEnd=4)
                .encode(
                    x=alt.X("deals:Q", title="Deals", axis=alt.Axis(tickMinStep=1, format="d")),
                    y=alt.Y("stage_name:N", sort=order, title=None),
                    color=alt.Color("kind:N", scale=KIND_COLOURS, legend=None),
                    tooltip=[
                        alt.Tooltip("stage_name:N", title="Stage"),
                        alt.Tooltip("deals:Q", title="Deals"),
                        alt.Tooltip("share:Q", title="Of the widest stage", format=".0%"),
                    ],
                )
            )
            text = bars.mark_text(align="left", dx=4).encode(
                text="deals:Q", color=alt.value("#374151")
            )
            st.altair_chart((bars + text).properties(height=alt.Step(30)), width="stretch")
    with right:
        st.markdown("**Stage → stage conversion**")
        if conv.empty:
            st.caption("No deal has changed stage yet.")
        else:
            chart = (
                alt.Chart(conv)
                .mark_bar(cornerRadiusEnd=4, color="#7C3AED")
                .encode(
                    x=alt.X(
                        "rate:Q",
                        title="Share of the deals that entered the first stage",
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
                        alt.Tooltip("transition:N", title="Move"),
                        alt.Tooltip("deals:Q", title="Deals"),
                        alt.Tooltip("entered_from:Q", title="Entered the first stage"),
                        alt.Tooltip("rate:Q", title="Conversion", format=".0%"),
                    ],
                )
            )
            label = chart.mark_text(align="left", dx=4, color="#374151").encode(
                text=alt.Text("rate:Q", format=".0%")
            )
            st.altair_chart((chart + label).properties(height=alt.Step(30)), width="stretch")
    with st.expander("Conversion table"):
        st.dataframe(
            conv[["from_name", "to_name", "deals", "entered_from", "rate"]],
            hide_index=True,
            width="stretch",
            column_config={
                "from_name": "From",
                "to_name": "To",
                "deals": "Deals moved",
                "entered_from": "Deals that entered 'From'",
                "rate": st.column_config.ProgressColumn(
                    "Conversion", format="percent", min_value=0, max_value=1
                ),
            },
        )

    st.subheader("Time")
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Average time in each stage (hours)**")
        times = conveyor.reports.time_in_stage(funnel, now)
        times = times[times["visits"] > 0]
        if times.empty:
            st.caption("No stays recorded yet.")
        else:
            times = times.assign(
                avg=times["avg_hours"].round(1), readable=times["avg_hours"].map(reports.hours_text)
            )
            chart = (
                alt.Chart(times)
                .mark_bar(cornerRadiusEnd=4, color="#0EA5E9")
                .encode(
                    x=alt.X("avg:Q", title="Hours (stays still running count up to now)"),
                    y=alt.Y("stage_name:N", sort=times["stage_name"].tolist(), title=None),
                    tooltip=[
                        alt.Tooltip("stage_name:N", title="Stage"),
                        alt.Tooltip("readable:N", title="Average"),
                        alt.Tooltip("visits:Q", title="Stays"),
                        alt.Tooltip("finished:Q", title="Finished"),
                    ],
                )
            )
            st.altair_chart(chart.properties(height=alt.Step(30)), width="stretch")
    with right:
        threshold = st.slider(
            "Stuck: longer in one stage than (hours)",
            min_value=1,
            max_value=24 * 30,
            value=48,
            step=1,
            key=KEY + "stuck",
        )
        stuck = conveyor.reports.stuck_deals(funnel, threshold, now)
        st.markdown(
            f"**{len(stuck)} open deal{'s' if len(stuck) != 1 else ''} stuck longer than "
            f"{reports.hours_text(threshold)}**"
        )
        if stuck.empty:
            st.caption("None: every open deal moved on in time.")
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
                    x=alt.X("hours:Q", title="Hours in the current stage"),
                    y=alt.Y("label:N", sort="-x", title=None, axis=alt.Axis(labelLimit=220)),
                    tooltip=[
                        alt.Tooltip("label:N", title="Deal"),
                        alt.Tooltip("stage_name:N", title="Stage"),
                        alt.Tooltip("waited:N", title="Waiting"),
                        alt.Tooltip("manager:N", title="Manager"),
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
                    amount=stuck["amount"].map(money)
                ),
                hide_index=True,
                width="stretch",
                column_config={
                    "key": "Deal",
                    "title": "Title",
                    "stage_name": "Stage",
                    "manager": "Manager",
                    "waited": "In stage",
                    "amount": "Amount",
                },
            )

    st.subheader("Rules and managers")
    st.markdown("**Rule firings per week**")
    weekly = conveyor.reports.firings_per_week(funnel)
    if weekly.empty:
        st.caption("No rule has fired yet.")
    else:
        rules_order = (
            weekly.groupby("rule")["firings"].sum().sort_values(ascending=False).index.tolist()
        )
        chart = (
            alt.Chart(weekly)
            .mark_bar(cornerRadiusEnd=3)
            .encode(
                x=alt.X(
                    "sum(firings):Q", title="Firings", axis=alt.Axis(tickMinStep=1, format="d")
                ),
                y=alt.Y("rule:N", sort=rules_order, title=None, axis=alt.Axis(labelLimit=360)),
                color=alt.Color(
                    "week:O",
                    title="Week starting",
                    scale=alt.Scale(scheme="blues"),
                    legend=alt.Legend(orient="right"),
                ),
                tooltip=[
                    alt.Tooltip("week:O", title="Week starting"),
                    alt.Tooltip("rule:N", title="Rule"),
                    alt.Tooltip("firings:Q", title="Firings"),
                ],
            )
        )
        st.altair_chart(chart.properties(height=alt.Step(24)), width="stretch")
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.markdown("**Overdue tasks per manager**")
        overdue = conveyor.reports.overdue_by_manager(funnel, now)
        if overdue.empty:
            st.caption("No overdue tasks. 🎉")
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
                        title="Overdue tasks",
                        axis=alt.Axis(tickMinStep=1, format="d"),
                    ),
                    y=alt.Y("manager:N", sort=overdue["manager"].tolist(), title=None),
                    color=alt.Color(
                        "priority:N",
                        scale=alt.Scale(domain=["high", "normal"], range=["#DC2626", "#9CA3AF"]),
                        legend=alt.Legend(orient="top", title=None),
                    ),
                    tooltip=[
                        alt.Tooltip("manager:N", title="Manager"),
                        alt.Tooltip("priority:N", title="Priority"),
                        alt.Tooltip("tasks:Q", title="Overdue"),
                    ],
                )
            )
            st.altair_chart(chart.properties(height=alt.Step(32)), width="stretch")
    with right:
        st.markdown("**Overdue tasks**")
        queue = conveyor.reports.task_queue(funnel=funnel, overdue_only=True, now=now)
        st.dataframe(
            local_times(queue, ["due_at"])[["manager", "title", "priority", "due_at", "deal_key"]],
            hide_index=True,
            width="stretch",
            column_config={
                "manager": "Manager",
                "title": "Task",
                "priority": "Priority",
                "due_at": "Was due",
                "deal_key": "Deal",
            },
        )
    st.caption(
        f"Funnel “{md(rs.name)}” · times in {reports.display_zone().key} · weeks start on Monday."
    )

"""Builder page: the managers' morning view: open tasks and notifications, and the engine's action log.

Marking an item done goes through ``Conveyor.complete_task`` (it counts as manager activity, so
"no activity" rules re-arm); Retry puts a failed or dead action back in the outbox (``dispatch.retry``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from builder.state import get_conveyor, get_reader, page_boundary
from builder.views.deals import apply_change, local_times, md, show_flash
from engine.core import reports
from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import retry

KEY = "ar_"  # session keys of this page
FLASH = KEY + "flash"
MAX_ITEMS = (
    50  # one button per item: beyond this the page gets slow, and the filters narrow it down
)
STATUS_ICON = {"pending": "⏳", "sending": "📤", "done": "✅", "failed": "⚠️", "dead": "⛔"}
#: A message's own states beyond the action's (recorded: no provider for its channel).
MESSAGE_ICON = {"recorded": "📝", "sent": "✅", "delivered": "📬"}
UNASSIGNED = "(unassigned)"


@page_boundary
def render() -> None:
    st.title("✅ Actions review")
    conveyor = get_conveyor()
    show_flash(FLASH)
    funnels = dict(get_reader().reports.funnels_by_deals())
    total = get_reader().reports.summary()
    m = st.columns(4)
    m[0].metric("Open tasks & notifications", total.open_tasks)
    m[1].metric("Overdue tasks", total.overdue_tasks)
    m[2].metric("Actions waiting", total.pending_actions)
    m[3].metric("Failed actions", total.failed_actions)
    st.caption(f"Times shown in {reports.display_zone().key}.")
    queue_tab, log_tab = st.tabs(["📋 Queue", "⚙️ What the engine did"])
    with queue_tab:
        _queue(conveyor, funnels)
    with log_tab:
        _log(conveyor, funnels)


# -- queue ---------------------------------------------------------------------------------------------
def _queue(conveyor: Conveyor, funnels: dict[str, str]) -> None:
    managers = get_reader().reports.managers()
    f = st.columns([2, 2, 2, 1.3], vertical_alignment="bottom")
    manager = f[0].selectbox(
        "Manager",
        ["", *managers, UNASSIGNED],
        format_func=lambda x: x or "Everyone",
        key=KEY + "manager",
    )
    priorities = f[1].multiselect(
        "Priority", ["high", "normal", "low"], key=KEY + "priority", placeholder="Any priority"
    )
    funnel = f[2].selectbox(
        "Funnel",
        ["", *funnels],
        format_func=lambda x: funnels.get(x, "All funnels"),
        key=KEY + "funnel",
    )
    overdue = f[3].toggle("Overdue only", key=KEY + "overdue")
    queue = get_reader().reports.task_queue(
        manager=None if not manager else "" if manager == UNASSIGNED else manager,
        priorities=priorities or None,
        funnel=funnel or None,
        overdue_only=overdue,
    )
    if queue.empty:
        st.success(
            "Nothing waiting. 🎉"
            if not (manager or priorities or funnel or overdue)
            else "Nothing matches these filters."
        )
        return
    high = int(queue["high"].sum())
    late = int(queue["overdue"].sum())
    st.markdown(
        f"**{len(queue)}** waiting · :red[**{high}** high priority] · :orange[**{late}** overdue]"
    )
    for row in queue.head(MAX_ITEMS).itertuples():
        _item(conveyor, row)
    if len(queue) > MAX_ITEMS:
        st.caption(
            f"Showing the first {MAX_ITEMS} of {len(queue)}; narrow the filters to see the rest."
        )


def _item(conveyor: Conveyor, row: object) -> None:
    with st.container(border=True):
        a, b, c = st.columns([0.4, 7, 1.2], vertical_alignment="center")
        icon = "🔔" if row.kind == "notification" else "📌"
        a.markdown(f"### {icon}")
        badges = []
        if row.high:
            badges.append(f":red-badge[{row.priority.upper()}]")
        if row.overdue:
            badges.append(f":orange-badge[overdue {reports.hours_text(row.overdue_hours)}]")
        badges.append(f":gray-badge[{row.kind}]")
        title = f":red[**{md(row.title)}**]" if row.high else f"**{md(row.title)}**"
        b.markdown(" ".join(badges) + "  \n" + title)
        due = (
            "due " + reports.to_display(row.due_at)
            if row.kind == "task"
            else "since " + reports.to_display(row.due_at)
        )
        b.caption(
            f"{md(row.deal_key)} · {md(row.deal_title)} · 👤 {md(row.manager) or 'no manager'} · {due}"
        )
        if c.button(
            "Done",
            key=f"{KEY}done_{row.id}",
            type="primary" if row.high else "secondary",
            width="stretch",
        ):
            if apply_change(
                conveyor,
                lambda tid=int(row.id): conveyor.complete_task(tid),
                f"Done: {md(row.title)}",
                FLASH,
            ):
                st.rerun()


# -- engine log ----------------------------------------------------------------------------------------
def _log(conveyor: Conveyor, funnels: dict[str, str]) -> None:
    f = st.columns([3, 2, 2], vertical_alignment="bottom")
    statuses = f[0].multiselect(
        "Status", list(reports.ACTION_STATUSES), key=KEY + "log_status", placeholder="Any status"
    )
    funnel = f[1].selectbox(
        "Funnel",
        ["", *funnels],
        format_func=lambda x: funnels.get(x, "All funnels"),
        key=KEY + "log_funnel",
    )
    search = f[2].text_input("Rule or deal", key=KEY + "log_search", placeholder="search…")
    log = get_reader().reports.action_log(
        statuses=statuses or None, funnel=funnel or None, limit=1000
    )

    # A message the gateway accepted and later reported undelivered needs a person too.
    trouble = log[log["status"].isin(["failed", "dead"]) | log["message"].isin(["failed", "dead"])]
    if not trouble.empty:
        st.markdown(f"#### ⚠️ Needs attention ({len(trouble)})")
        st.caption(
            "Failed actions retry by themselves with growing pauses; dead ones gave up. Fix the cause "
            "(for example the phone number on the deal), then Retry puts the action back in the queue."
        )
        for row in trouble.head(MAX_ITEMS).itertuples():
            with st.container(border=True):
                a, b = st.columns([6, 1.2], vertical_alignment="center")
                state = row.message or row.status  # a message's own state: what the client got
                colour = "red" if state == "dead" else "orange"
                a.markdown(
                    f":{colour}-badge[{state}] **{md(row.rule_name)}** → `{row.action}` on "
                    f"{md(row.deal_key)} ({md(row.deal_title)}) · attempts {row.attempts}"
                )
                a.caption(
                    f"Error: {md(row.error) or '—'} · last try {reports.to_display(row.updated_at)}"
                )
                if b.button("Retry", key=f"{KEY}retry_{row.id}", width="stretch"):
                    if apply_change(
                        conveyor,
                        lambda oid=int(row.id): retry(conveyor, oid),
                        f"Action {row.id} is queued again.",
                        FLASH,
                    ):
                        st.rerun()

    if search.strip():
        needle = search.strip().lower()
        hay = (
            log["rule_name"]
            + " "
            + log["rule_id"]
            + " "
            + log["deal_key"]
            + " "
            + log["deal_title"]
        ).str.lower()
        log = log[hay.str.contains(needle, regex=False)]
    st.markdown(f"#### Log ({len(log)})")
    if log.empty:
        st.caption("The engine has not done anything that matches.")
        return
    view = local_times(log, ["created_at", "updated_at"])
    # A message shows its own state (recorded, sending, sent, delivered, failed, dead), not just "done".
    state = view["message"].where(view["message"] != "", view["status"])
    view["status"] = state.map(lambda s: f"{STATUS_ICON.get(s, MESSAGE_ICON.get(s, ''))} {s}")
    view["deal"] = view["deal_key"] + " · " + view["deal_title"]
    st.dataframe(
        view[
            [
                "created_at",
                "status",
                "rule_name",
                "deal",
                "action",
                "summary",
                "reason",
                "error",
                "attempts",
                "version",
            ]
        ].style.apply(_status_colours, axis=1),
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(view), 560),
        column_config={
            "created_at": "When",
            "status": "Status",
            "rule_name": "Rule",
            "deal": "Deal",
            "action": "Action",
            "summary": "Details",
            "reason": "Why (values when it fired)",
            "error": "Error",
            "attempts": "Tries",
            "version": st.column_config.NumberColumn("Rule-set v.", format="v%d"),
        },
    )


def _status_colours(row: pd.Series) -> list[str]:
    status = str(row["status"]).split()[-1]
    colour = {
        "dead": "#fde2e2",
        "failed": "#fff1d6",
        "pending": "#eef4ff",
        "sending": "#eef4ff",
    }.get(status, "")
    return [f"background-color: {colour}" if colour else "" for _ in row]

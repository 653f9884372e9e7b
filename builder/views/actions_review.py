"""Builder page: the managers' morning view: open tasks and notifications, and the engine's action log.

Marking an item done goes through ``Conveyor.complete_task`` (it counts as manager activity, so
"no activity" rules re-arm); Retry puts a failed or dead action back in the outbox (``dispatch.retry``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from builder import session
from builder.state import funnel_label, get_reader, page_boundary
from builder.views.deals import apply_change, local_times, md, show_flash, when
from engine.core import reports
from engine.core.access import Permission
from engine.core.conveyor import Conveyor
from engine.i18n import N_, _

KEY = "ar_"  # session keys of this page
FLASH = KEY + "flash"
MAX_ITEMS = (
    50  # one button per item: beyond this the page gets slow, and the filters narrow it down
)
STATUS_ICON = {"pending": "⏳", "sending": "📤", "done": "✅", "failed": "⚠️", "dead": "⛔"}
#: A message's own states beyond the action's (recorded: no provider for its channel).
MESSAGE_ICON = {"recorded": "📝", "sent": "✅", "delivered": "📬"}
UNASSIGNED = "(unassigned)"
#: Action and message states as shown (translated where shown).
STATE_NAMES = {
    "pending": N_("pending"),
    "sending": N_("sending"),
    "done": N_("done"),
    "failed": N_("failed"),
    "dead": N_("dead"),
    "recorded": N_("recorded"),
    "sent": N_("sent"),
    "delivered": N_("delivered"),
}
_COLOURS = {"⛔": "#fde2e2", "⚠️": "#fff1d6", "⏳": "#eef4ff", "📤": "#eef4ff"}


@page_boundary
def render() -> None:
    st.title("✅ " + _("Actions review"))
    conveyor = session.acting_conveyor()  # changes, made as the signed-in user
    show_flash(FLASH)
    funnels = dict(get_reader().reports.funnels_by_deals())
    total = get_reader().reports.summary()
    m = st.columns(4)
    m[0].metric(_("Open tasks & notifications"), total.open_tasks)
    m[1].metric(_("Overdue tasks"), total.overdue_tasks)
    m[2].metric(_("Actions waiting"), total.pending_actions)
    m[3].metric(_("Failed actions"), total.failed_actions)
    st.caption(_("Times shown in {zone}.").format(zone=reports.display_zone().key))
    queue_tab, log_tab = st.tabs(["📋 " + _("Queue"), "⚙️ " + _("What the engine did")])
    with queue_tab:
        _queue(conveyor, funnels)
    with log_tab:
        _log(conveyor, funnels)


# -- queue ---------------------------------------------------------------------------------------------
def _queue(conveyor: Conveyor, funnels: dict[str, str]) -> None:
    managers = get_reader().reports.managers()
    f = st.columns([2, 2, 2, 1.3], vertical_alignment="bottom")
    manager = f[0].selectbox(
        _("Manager"),
        ["", *managers, UNASSIGNED],
        format_func=lambda x: _("(unassigned)") if x == UNASSIGNED else x or _("Everyone"),
        key=KEY + "manager",
    )
    priorities = f[1].multiselect(
        _("Priority"),
        ["high", "normal", "low"],
        format_func=_,
        key=KEY + "priority",
        placeholder=_("Any priority"),
    )
    funnel = f[2].selectbox(
        _("Funnel"),
        ["", *funnels],
        format_func=lambda x: funnel_label(x, funnels[x]) if x in funnels else _("All funnels"),
        key=KEY + "funnel",
    )
    overdue = f[3].toggle(_("Overdue only"), key=KEY + "overdue")
    queue = get_reader().reports.task_queue(
        manager=None if not manager else "" if manager == UNASSIGNED else manager,
        priorities=priorities or None,
        funnel=funnel or None,
        overdue_only=overdue,
        actor=session.current_actor(),
    )
    if queue.empty:
        st.success(
            _("Nothing waiting. 🎉")
            if not (manager or priorities or funnel or overdue)
            else _("Nothing matches these filters.")
        )
        return
    high = int(queue["high"].sum())
    late = int(queue["overdue"].sum())
    st.markdown(
        _(
            "**{count}** waiting · :red[**{high}** high priority] · :orange[**{late}** overdue]"
        ).format(count=len(queue), high=high, late=late)
    )
    for row in queue.head(MAX_ITEMS).itertuples():
        _item(conveyor, row)
    if len(queue) > MAX_ITEMS:
        st.caption(
            _("Showing the first {shown} of {count}; narrow the filters to see the rest.").format(
                shown=MAX_ITEMS, count=len(queue)
            )
        )


def _item(conveyor: Conveyor, row: object) -> None:
    with st.container(border=True):
        a, b, c = st.columns([0.4, 7, 1.2], vertical_alignment="center")
        icon = "🔔" if row.kind == "notification" else "📌"
        a.markdown(f"### {icon}")
        badges = []
        if row.high:
            badges.append(f":red-badge[{_(row.priority).upper()}]")
        if row.overdue:
            overdue = _("overdue {time}").format(time=reports.hours_text(row.overdue_hours))
            badges.append(f":orange-badge[{overdue}]")
        badges.append(f":gray-badge[{_(row.kind)}]")
        title = f":red[**{md(row.title)}**]" if row.high else f"**{md(row.title)}**"
        b.markdown(" ".join(badges) + "  \n" + title)
        due = (
            _("due {moment}").format(moment=when(row.due_at))
            if row.kind == "task"
            else _("since {moment}").format(moment=when(row.due_at))
        )
        who = md(row.manager) or _("no manager")
        b.caption(f"{md(row.deal_key)} · {md(row.deal_title)} · 👤 {who} · {due}")
        if session.can(Permission.COMPLETE_TASKS) and c.button(
            _("Done"),
            key=f"{KEY}done_{row.id}",
            type="primary" if row.high else "secondary",
            width="stretch",
        ):
            if apply_change(
                conveyor,
                lambda tid=int(row.id): conveyor.complete_task(tid),
                _("Done: {task}").format(task=md(row.title)),
                FLASH,
            ):
                st.rerun()


# -- engine log ----------------------------------------------------------------------------------------
def _log(conveyor: Conveyor, funnels: dict[str, str]) -> None:
    f = st.columns([3, 2, 2], vertical_alignment="bottom")
    statuses = f[0].multiselect(
        _("Status"),
        list(reports.ACTION_STATUSES),
        format_func=_state,
        key=KEY + "log_status",
        placeholder=_("Any status"),
    )
    funnel = f[1].selectbox(
        _("Funnel"),
        ["", *funnels],
        format_func=lambda x: funnel_label(x, funnels[x]) if x in funnels else _("All funnels"),
        key=KEY + "log_funnel",
    )
    search = f[2].text_input(_("Rule or deal"), key=KEY + "log_search", placeholder=_("search…"))
    log = get_reader().reports.action_log(
        statuses=statuses or None,
        funnel=funnel or None,
        limit=1000,
        actor=session.current_actor(),
    )

    # A message the gateway accepted and later reported undelivered needs a person too.
    trouble = log[log["status"].isin(["failed", "dead"]) | log["message"].isin(["failed", "dead"])]
    if not trouble.empty:
        st.markdown("#### ⚠️ " + _("Needs attention ({count})").format(count=len(trouble)))
        st.caption(
            _(
                "Failed actions retry by themselves with growing pauses; dead ones gave up. Fix the "
                "cause (for example the phone number on the deal), then Retry puts the action back in "
                "the queue."
            )
        )
        for row in trouble.head(MAX_ITEMS).itertuples():
            with st.container(border=True):
                a, b = st.columns([6, 1.2], vertical_alignment="center")
                state = row.message or row.status  # a message's own state: what the client got
                colour = "red" if state == "dead" else "orange"
                a.markdown(f":{colour}-badge[{_state(state)}] " + _headline(row))
                a.caption(
                    _("Error: {error} · last try {moment}").format(
                        error=md(row.error) or "—", moment=when(row.updated_at)
                    )
                )
                if session.can(Permission.RETRY_ACTIONS) and b.button(
                    _("Retry"), key=f"{KEY}retry_{row.id}", width="stretch"
                ):
                    if apply_change(
                        conveyor,
                        lambda oid=int(row.id): conveyor.retry_action(oid),
                        _("Action {id} is queued again.").format(id=row.id),
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
            + " "
            + log["recipient"]
        ).str.lower()
        log = log[hay.str.contains(needle, regex=False)]
    st.markdown("#### " + _("Log ({count})").format(count=len(log)))
    if log.empty:
        st.caption(_("The engine has not done anything that matches."))
        return
    view = local_times(log, ["created_at", "updated_at"])
    # A message shows its own state (recorded, sending, sent, delivered, failed, dead), not just "done".
    state = view["message"].where(view["message"] != "", view["status"])
    view["status"] = state.map(
        lambda s: f"{STATUS_ICON.get(s, MESSAGE_ICON.get(s, ''))} {_state(s)}"
    )
    view["deal"] = (view["deal_key"] + " · " + view["deal_title"]).where(view["deal_key"] != "", "")
    # Who it is to: a manager by name (👤), a client by their address.
    is_manager = view["manager_id"].notna()
    view["recipient"] = ("👤 " + view["recipient"]).where(is_manager, view["recipient"])
    view["reason"] = view["reason"].str.replace("\n", " · ", regex=False)  # one line per row
    st.dataframe(
        view[
            [
                "created_at",
                "status",
                "rule_name",
                "deal",
                "recipient",
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
            "created_at": _("When"),
            "status": _("Status"),
            "rule_name": _("Rule"),
            "deal": _("Deal"),
            "recipient": _("To"),
            "action": _("Action"),
            "summary": _("Details"),
            "reason": st.column_config.TextColumn(_("Why (values when it fired)"), width="large"),
            "error": _("Error"),
            "attempts": _("Tries"),
            "version": st.column_config.NumberColumn(_("Rule-set v."), format="v%d"),
        },
    )


def _headline(row: object) -> str:
    """What a row needing attention is: a rule's action on a deal, or a message to a manager."""
    if pd.notna(row.manager_id):
        # A message to a manager (a notification, an urgent task, the digest): the manager is its recipient.
        about = (
            _(" about {deal} ({title})").format(deal=md(row.deal_key), title=md(row.deal_title))
            if row.deal_key
            else ""
        )
        return _(
            "**{rule}** → message to manager **{manager}**{about} · attempts {attempts}"
        ).format(
            rule=md(row.rule_name), manager=md(row.recipient), about=about, attempts=row.attempts
        )
    return _("**{rule}** → `{action}` on {deal} ({title}) · attempts {attempts}").format(
        rule=md(row.rule_name),
        action=row.action,
        deal=md(row.deal_key),
        title=md(row.deal_title),
        attempts=row.attempts,
    )


def _state(state: str) -> str:
    return _(STATE_NAMES[state]) if state in STATE_NAMES else state


def _status_colours(row: pd.Series) -> list[str]:
    # The shown status is translated; its icon says which state it is.
    colour = _COLOURS.get(str(row["status"]).split(" ", 1)[0], "")
    return [f"background-color: {colour}" if colour else "" for _cell in row]

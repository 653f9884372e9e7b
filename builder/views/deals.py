"""Builder page: deals by stage, a new-deal form, and one deal's card with its history (``deal_card``).

Every button here is a real engine change (``Conveyor.create_deal``, ``move_deal``, ``update_deal``...),
so rules fire exactly as they would from the CLI; internal actions are applied at once afterwards.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from builder import session
from builder.state import get_reader, page_boundary
from builder.views.deal_card import deal_view
from builder.views.shared import (
    CARDS_PER_STAGE,
    FLASH,
    KEY,
    KIND_BADGE,
    KIND_ICON,
    KIND_NAMES,
    MESSAGE_STATUS,
    SELECTED,
    apply_change,
    field_widgets,
    funnel_picker,
    local_times,
    md,
    money,
    settle,
    show_flash,
    when,
)
from engine.core import reports
from engine.core.access import Permission
from engine.core.conveyor import Conveyor
from engine.document.labels import label
from engine.document.ruleset import RuleSet, StageKind
from engine.i18n import _, ngettext

# What the other pages import from here (they now live in builder.views.shared).
__all__ = [
    "CARDS_PER_STAGE",
    "FLASH",
    "KEY",
    "KIND_BADGE",
    "KIND_ICON",
    "KIND_NAMES",
    "MESSAGE_STATUS",
    "SELECTED",
    "apply_change",
    "field_widgets",
    "funnel_picker",
    "local_times",
    "md",
    "money",
    "settle",
    "show_flash",
    "when",
    "render",
]


@page_boundary
def render() -> None:
    st.title("💼 " + _("Deals"))
    conveyor = session.acting_conveyor()  # changes, made as the signed-in user
    reader = get_reader()  # page reads: no write lock, so the page never waits for the engine
    show_flash(FLASH)
    top = st.columns([2, 2, 1], vertical_alignment="bottom")
    with top[0]:
        funnel = funnel_picker(reader, KEY + "funnel")
    if funnel is None:
        return
    with top[1]:
        search = st.text_input(
            _("Search"), placeholder=_("title, key, phone or manager"), key=KEY + "search"
        )
    with top[2]:
        show_closed = st.toggle(_("Show won / lost"), value=True, key=KEY + "closed")
    rs = reader.ruleset(funnel)
    board = reader.reports.deal_board(funnel, actor=session.current_actor())

    if session.can(Permission.WRITE_DEALS):  # a viewer reads the board only
        with st.expander("➕ " + _("New deal"), expanded=board.empty):
            _new_deal_form(conveyor, rs)

    shown = board
    if search.strip():
        needle = search.strip().lower()
        hay = (
            board["title"] + " " + board["key"] + " " + board["phone"] + " " + board["manager"]
        ).str.lower()
        shown = board[hay.str.contains(needle, regex=False)]
    _board(rs, shown, show_closed)

    ids = board["id"].tolist()
    if st.session_state.get(SELECTED) not in ids:
        st.session_state[SELECTED] = None
    labels = {row.id: f"{row.key} · {row.title}" for row in board.itertuples()}
    st.divider()
    chosen = st.selectbox(
        _("Open a deal"),
        ids,
        format_func=lambda i: labels.get(i, str(i)),
        index=None,
        placeholder=_("Choose a deal, or click Open on a card"),
        key=SELECTED,
    )
    if chosen is not None:
        deal_view(conveyor, int(chosen))


def _open(deal_id: int) -> None:
    st.session_state[SELECTED] = deal_id


def _board(rs: RuleSet, board: pd.DataFrame, show_closed: bool) -> None:
    stages = [s for s in rs.stages if show_closed or s.kind is StageKind.OPEN]
    if not stages:
        return
    per_row = 6  # wider funnels wrap onto a second row of columns rather than squeezing cards
    for start in range(0, len(stages), per_row):
        chunk = stages[start : start + per_row]
        cols = st.columns(len(chunk) if len(stages) > per_row else len(stages), gap="small")
        for col, stage in zip(cols, chunk, strict=False):
            deals = board[board["stage"] == stage.id]
            with col:
                colour = KIND_BADGE[stage.kind.value]
                count = ngettext("{count} deal", "{count} deals", len(deals)).format(
                    count=len(deals)
                )
                st.markdown(
                    f"**{md(label(stage.name))}**  \n"
                    f":{colour}-badge[{_(KIND_NAMES[stage.kind.value])}] :gray-badge[{count}]"
                )
                if deals.empty:
                    st.caption("—")
                # Urgent and longest-waiting first; a busy stage shows its top cards and says how many more.
                deals = deals.sort_values(
                    ["high_tasks", "hours_in_stage"], ascending=[False, False]
                )
                for row in deals.head(CARDS_PER_STAGE).itertuples():
                    with st.container(border=True, gap="xsmall"):
                        st.markdown(f"**{md(row.title or row.key)}**")
                        bits = [row.key]
                        if row.amount is not None and not pd.isna(row.amount):
                            bits.append(f"💰 {money(row.amount, rs.currency)}")
                        who = (
                            f"👤 {md(row.manager)}"
                            if row.manager
                            else ":orange[" + _("no manager") + "]"
                        )
                        wait = (
                            ""
                            if row.closed
                            else "  \n⏱ "
                            + _("{time} in stage").format(
                                time=reports.hours_text(row.hours_in_stage)
                            )
                        )
                        st.caption(" · ".join(bits) + "  \n" + who + wait)
                        with st.container(
                            horizontal=True, vertical_alignment="center", gap="small"
                        ):
                            if row.high_tasks:
                                urgent = ngettext(
                                    "{count} urgent", "{count} urgent", int(row.high_tasks)
                                ).format(count=int(row.high_tasks))
                                st.markdown(f":red-badge[{urgent}]", width="content")
                            elif row.open_tasks:
                                tasks = ngettext(
                                    "{count} task", "{count} tasks", int(row.open_tasks)
                                ).format(count=int(row.open_tasks))
                                st.markdown(f":blue-badge[{tasks}]", width="content")
                            st.button(
                                _("Open →"),
                                key=f"{KEY}open_{row.id}",
                                on_click=_open,
                                args=(int(row.id),),
                                type="tertiary",
                                width="content",
                            )
                if len(deals) > CARDS_PER_STAGE:
                    st.caption(
                        _("+ {count} more: search, or pick one below").format(
                            count=len(deals) - CARDS_PER_STAGE
                        )
                    )


def _new_deal_form(conveyor: Conveyor, rs: RuleSet) -> None:
    managers = get_reader().reports.managers()
    open_stages = [s for s in rs.stages if s.kind is StageKind.OPEN] or rs.stages
    with st.form(
        KEY + "new", clear_on_submit=True, border=False
    ):  # no double creation on a second click
        c1, c2, c3 = st.columns(3)
        title = c1.text_input(
            _("Title") + " *", key=KEY + "new_title", placeholder=_("Company or contact")
        )
        phone = c2.text_input(_("Phone"), key=KEY + "new_phone", placeholder="+380…")
        email = c3.text_input(_("E-mail"), key=KEY + "new_email")
        c4, c5, c6 = st.columns(3)
        amount = c4.number_input(
            _("Amount"), min_value=0.0, value=None, step=1000.0, key=KEY + "new_amount"
        )
        stage_ids = [s.id for s in open_stages]
        stage = c5.selectbox(
            _("Stage"),
            stage_ids,
            index=stage_ids.index(rs.entry_stage) if rs.entry_stage in stage_ids else 0,
            format_func=lambda s: label(rs.stage(s).name),
            key=KEY + "new_stage",
        )
        manager = c6.selectbox(
            _("Manager"),
            [""] + managers,
            format_func=lambda m: m or _("Assigned by the rules"),
            key=KEY + "new_manager",
        )
        custom = field_widgets(rs.fields, {}, KEY + "new_f_", columns=3)
        submitted = st.form_submit_button(_("Create deal"), type="primary")
    if not submitted:
        return
    if not title.strip():
        st.error(_("Give the deal a title (the company or contact name)."))
        return
    fields: dict[str, Any] = {"phone": phone.strip(), "email": email.strip(), "amount": amount}
    fields.update({k: v for k, v in custom.items() if v is not None})
    created: dict[str, int] = {}

    def create() -> None:
        created["id"] = conveyor.create_deal(
            rs.funnel,
            title=title.strip(),
            stage=stage,
            fields=fields,
            manager=manager or None,
        )

    if apply_change(
        conveyor,
        create,
        _("Deal “{title}” created; its rules have run.").format(title=md(title.strip())),
        FLASH,
    ):
        st.session_state[SELECTED] = created["id"]
        st.rerun()

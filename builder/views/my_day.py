"""Builder page "My day": a manager's tasks due today and overdue, and their deals that need them.

Each item is one click from done (``Conveyor.complete_task``) or from its deal card (the Deals page,
opened on that deal). The counters count what the filters show. A signed-in manager sees their own
day; one who may see the team, and an owner, pick a colleague or the whole team.
"""

from __future__ import annotations

import streamlit as st

from builder import session, state
from builder.state import get_conveyor, get_reader, page_boundary
from builder.views.deals import SELECTED as DEAL_SELECTED
from builder.views.deals import apply_change, md, show_flash
from engine.core import reports
from engine.core.access import Role
from engine.core.deals import Manager
from engine.core.my_day import DayTask, ManagerDay, NeedsMe
from engine.i18n import _

KEY = "day_"  # session keys of this page
FLASH = KEY + "flash"
REASON_ICON = {"opened": "👀", "guard": "📝", "idle": "💤"}


@page_boundary
def render() -> None:
    if st.session_state.pop(KEY + "go", False):  # a "Deal →" click: a callback cannot switch pages
        st.switch_page(state.page("deals"))
    st.title(_("☀️ My day"))
    reader = get_reader()
    show_flash(FLASH)
    manager_id = _who(reader.deals.managers())
    funnels = dict(reader.reports.funnels_by_deals())
    top = st.columns([2, 2, 1], vertical_alignment="bottom")
    funnel = top[0].selectbox(
        _("Funnel"),
        [None, *funnels],
        format_func=lambda f: _("All funnels") if f is None else funnels.get(f, f),
        key=KEY + "funnel",
    )
    search = top[1].text_input(
        _("Search"), placeholder=_("deal, task or reason"), key=KEY + "search"
    )
    high_only = top[2].toggle(_("High priority only"), key=KEY + "high")
    day = _filtered(reader.day.of(manager_id, funnel=funnel), search, high_only)

    m = st.columns(3)
    m[0].metric(_("Overdue"), len(day.overdue))
    m[1].metric(_("Due today"), len(day.today))
    m[2].metric(_("Deals that need me"), len(day.deals))

    left, right = st.columns([1, 1], gap="large")
    with left:
        st.subheader(_("Overdue"))
        if not day.overdue:
            st.caption(_("Nothing overdue."))
        for t in day.overdue:
            _task(t)
        st.subheader(_("Due today"))
        if not day.today:
            st.caption(_("Nothing else due today."))
        for t in day.today:
            _task(t)
    with right:
        st.subheader(_("Deals that need me"))
        if not day.deals:
            st.caption(_("No deal is waiting for you."))
        for n in day.deals:
            _deal(n)


def _who(managers: list[Manager]) -> int | None:
    """The manager whose day this is: the signed-in manager's own; one who sees the team (and an owner
    or a viewer) may pick a colleague or the whole team, starting at their own day."""
    signed = session.signed_in_user()
    own = signed.manager_id if signed is not None else None
    if signed is not None and signed.role is Role.MANAGER and not signed.sees_team:
        return own
    names = {m.id: m.name for m in managers if m.active or m.id == own}
    options: list[int | None] = [None, *names]
    if KEY + "pick" not in st.session_state and own in names:
        st.session_state[KEY + "pick"] = own
    picked: int | None = st.selectbox(
        _("Manager"),
        options,
        format_func=lambda i: _("Whole team") if i is None else names.get(i, str(i)),
        key=KEY + "pick",
    )
    return picked


def _filtered(day: ManagerDay, search: str, high_only: bool) -> ManagerDay:
    """The day as the filters show it: the counters count these lists."""
    needle = search.strip().lower()

    def task_shown(t: DayTask) -> bool:
        hay = f"{t.title} {t.deal_key} {t.deal_title}".lower()
        return (not high_only or t.priority in reports.HIGH_PRIORITIES) and needle in hay

    def deal_shown(n: NeedsMe) -> bool:
        hay = " ".join([n.deal_key, n.deal_title, *(r.text for r in n.reasons)]).lower()
        return needle in hay and not high_only

    return ManagerDay(
        [t for t in day.overdue if task_shown(t)],
        [t for t in day.today if task_shown(t)],
        [n for n in day.deals if deal_shown(n)],
    )


def _task(t: DayTask) -> None:
    with st.container(border=True):
        a, b = st.columns([4, 2], vertical_alignment="center")
        badges = []
        if t.priority in reports.HIGH_PRIORITIES:
            badges.append(":red-badge[" + _("high") + "]")
        if t.overdue:
            badges.append(":orange-badge[" + _("overdue") + "]")
        if t.kind == "notification":
            badges.append(":blue-badge[" + _("notification") + "]")
        a.markdown(" ".join([*badges, md(t.title)]))
        due = (
            _("due {at}").format(at=reports.to_display(t.due_at))
            if t.kind == "task" and t.due_at
            else ""
        )
        a.caption(
            " · ".join(x for x in [md(t.deal_title or t.deal_key), md(t.stage_name), due] if x)
        )
        with b.container(horizontal=True, gap="small"):
            if st.button(_("Done"), key=f"{KEY}done_{t.id}", type="primary"):
                conveyor = get_conveyor()
                if apply_change(
                    conveyor,
                    lambda: conveyor.complete_task(
                        t.id, actor=session.current_actor() or "manager"
                    ),
                    _("Done: {title}").format(title=md(t.title)),
                    FLASH,
                ):
                    st.rerun()
            st.button(
                _("Deal →"), key=f"{KEY}open_t{t.id}", on_click=_open, args=(t.deal_id, t.funnel)
            )


def _deal(n: NeedsMe) -> None:
    with st.container(border=True, gap="xsmall"):
        st.markdown(f"**{md(n.deal_title or n.deal_key)}** · {md(n.stage_name)}")
        st.markdown("\n".join(f"- {REASON_ICON.get(r.kind, '')} {md(r.text)}" for r in n.reasons))
        st.button(
            _("Open the deal →"),
            key=f"{KEY}open_d{n.deal_id}",
            on_click=_open,
            args=(n.deal_id, n.funnel),
        )


def _open(deal_id: int, funnel: str) -> None:
    """Open the deal's card: the Deals page on its funnel, with the deal chosen."""
    st.session_state[state.FUNNEL_NEXT] = funnel
    st.session_state[DEAL_SELECTED] = deal_id
    st.session_state[KEY + "go"] = True

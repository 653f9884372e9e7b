"""Builder page: deals by stage, a new-deal form, and one deal's card with its history.

Every button here is a real engine change (``Conveyor.create_deal``, ``move_deal``, ``update_deal``...),
so rules fire exactly as they would from the CLI; internal actions are applied at once afterwards.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from builder.state import (
    error_message,
    funnel_label,
    get_conveyor,
    get_reader,
    page_boundary,
    shared_funnel_picker,
    show_error,
)
from engine.core import reports
from engine.core.conveyor import Conveyor
from engine.document.labels import label
from engine.document.ruleset import FieldDef, FieldType, RuleSet, StageKind
from engine.errors import ConveyorError
from engine.i18n import N_, _, format_datetime, format_money, format_number, ngettext
from engine.rules.deal import DealState

_log = logging.getLogger(__name__)
KEY = "deals_"  # session keys of this page
SELECTED = KEY + "selected"
FLASH = KEY + "flash"
KIND_BADGE = {"open": "blue", "won": "green", "lost": "red"}
KIND_ICON = {"open": "🔵", "won": "🟢", "lost": "🔴"}
#: messages.status, as the deal card shows it: "recorded" is not "sent" (no provider for the channel).
MESSAGE_STATUS = {
    "recorded": "📝 " + N_("recorded (no provider for this channel)"),
    "sending": "📤 " + N_("sending"),
    "sent": "✅ " + N_("sent"),
    "delivered": "📬 " + N_("delivered"),
    "failed": "⚠️ " + N_("failed"),
    "dead": "⛔ " + N_("dead"),
}
KIND_NAMES = {"open": N_("open"), "won": N_("won"), "lost": N_("lost")}
#: Task kinds and priorities the pages show through ``_(value)``: listed here for the catalogue.
WORDS = (N_("task"), N_("notification"), N_("high"), N_("normal"), N_("low"))
CARDS_PER_STAGE = 20


# -- shared with the other manager pages ---------------------------------------------------------------
def settle(conveyor: Conveyor, rounds: int = 50) -> None:
    """Apply ready internal actions (tasks, moves, invoices) now, so the page shows their effect.

    The engine service would do the same on its next wake-up; messages are left to it.
    """
    try:
        conveyor.apply_queued(rounds)
    except (ConveyorError, SQLAlchemyError) as exc:
        # Not the user's problem to retry: the change itself is committed. Keep the reason for the operator.
        _log.warning("settling internal actions stopped: %s", error_message(exc))
        st.warning(
            _(
                "The change is saved; its follow-up actions will be carried out by the engine service."
            )
        )


def apply_change(
    conveyor: Conveyor, change: Callable[[], Any], success: str, flash_key: str
) -> bool:
    """Run one engine change; on success settle internal actions and keep a message for the rerun."""
    try:
        change()
    except ConveyorError as exc:
        st.error(md(str(exc)))
        return False
    except SQLAlchemyError as exc:  # busy, or refused by the database: nothing was changed
        show_error(exc)
        return False
    settle(conveyor)
    st.session_state[flash_key] = success
    return True


def show_flash(flash_key: str) -> None:
    message = st.session_state.pop(flash_key, None)
    if message:
        st.success(message, icon="✅")
        st.toast(message, icon="✅")  # the page may be scrolled down to the deal that changed


def local_times(df: pd.DataFrame, columns: list[str], fmt: str = "%Y-%m-%d %H:%M") -> pd.DataFrame:
    """Stored UTC columns as text in the display zone (CONVEYOR_TZ, Europe/Kyiv by default)."""
    out = df.copy()
    for col in columns:
        if col in out:
            out[col] = out[col].map(
                lambda t: "" if t is None or pd.isna(t) else reports.to_display(t, fmt)
            )
    return out


def money(value: float | None, currency: str | None = None) -> str:
    """An amount in the reader's locale, with the funnel's currency when it names one."""
    if value is None or pd.isna(value):
        return ""
    if not math.isfinite(value) or abs(value) >= 1e15:  # a stored odd value: shown, never formatted
        return f"{value:g}"
    return format_money(value, currency) if currency else format_number(round(value))


def when(moment: Any) -> str:
    """A stored UTC instant in the display zone, written the reader's way ("1 груд. 2026 р., 12:05")."""
    if moment is None or pd.isna(moment):
        return ""
    return format_datetime(moment, reports.display_zone(), "short")


def funnel_picker(conveyor: Conveyor, key: str) -> str | None:
    funnels = conveyor.reports.funnels_by_deals()
    if not funnels:
        st.info(_("No funnel yet. Load one on the Versions page (or run `conveyor demo`)."))
        return None
    names = dict(funnels)
    # The same shared choice as the owner pages: a funnel picked on one page stays picked on the others.
    return shared_funnel_picker(
        st, list(names), lambda f: funnel_label(f, names[f]), key, lambda ids: ids[0]
    )


# -- page ----------------------------------------------------------------------------------------------
@page_boundary
def render() -> None:
    st.title("💼 " + _("Deals"))
    conveyor = get_conveyor()  # changes
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
    board = reader.reports.deal_board(funnel)

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
        _deal_view(conveyor, int(chosen))


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


# -- new deal ------------------------------------------------------------------------------------------
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
            actor="manager",
        )

    if apply_change(
        conveyor,
        create,
        _("Deal “{title}” created; its rules have run.").format(title=md(title.strip())),
        FLASH,
    ):
        st.session_state[SELECTED] = created["id"]
        st.rerun()


def field_widgets(
    fields: list[FieldDef], values: dict[str, Any], prefix: str, columns: int = 2
) -> dict[str, Any]:
    """One widget per custom field, chosen by its type; returns name → value (None when unset)."""
    out: dict[str, Any] = {}
    if not fields:
        return out
    cols = st.columns(columns)
    for i, fd in enumerate(fields):
        title = label(fd.label) or fd.name
        current = values.get(fd.name)
        with cols[i % columns]:
            key = prefix + fd.name
            if fd.type is FieldType.SELECT:
                options = [""] + list(fd.options)
                index = options.index(current) if current in options else 0
                out[fd.name] = (
                    st.selectbox(
                        title, options, index=index, format_func=lambda o: _option(o), key=key
                    )
                    or None
                )
            elif fd.type is FieldType.NUMERIC:
                out[fd.name] = st.number_input(title, value=_number_value(current), key=key)
            elif fd.type is FieldType.BOOLEAN:
                out[fd.name] = st.checkbox(title, value=bool(current), key=key)
            else:
                out[fd.name] = (
                    st.text_input(title, value="" if current is None else str(current), key=key)
                    or None
                )
    return out


# -- one deal ------------------------------------------------------------------------------------------
def _deal_view(conveyor: Conveyor, deal_id: int) -> None:
    try:
        card = get_reader().reports.deal_card(deal_id)
    except ConveyorError as exc:
        st.error(md(str(exc)))
        return
    d = card.state
    rs = card.ruleset
    stage = rs.stage(d.stage)
    kind = stage.kind.value if stage else "open"
    st.subheader(md(d.title or d.key))
    facts = [f":{KIND_BADGE[kind]}-badge[{md(card.stage_name)}]", d.key]
    facts.append(
        f"👤 {md(d.manager_name)}" if d.manager_name else ":orange[" + _("no manager") + "]"
    )
    if d.amount is not None:
        facts.append(f"💰 {money(d.amount, rs.currency)}")
    if d.invoice_number:
        facts.append(f"🧾 {d.invoice_number}")
    if card.parent_key:
        facts.append(_("started from {deal}").format(deal=card.parent_key))
    st.markdown(" · ".join(facts))
    waited = (conveyor.clock.now() - d.stage_entered_at).total_seconds() / 3600
    st.caption(
        _("In this stage since {since} ({waited}) · created {created} · times in {zone}").format(
            since=when(d.stage_entered_at),
            waited=reports.hours_text(waited),
            created=when(d.created_at),
            zone=reports.display_zone().key,
        )
    )

    left, right = st.columns([3, 2], gap="large")
    with right:
        _moves(conveyor, card)
        _events(conveyor, rs, d)
    with left:
        open_tasks = int((card.tasks["status"] == "open").sum()) if not card.tasks.empty else 0
        tabs = st.tabs(
            [
                _("Fields"),
                _("History ({count})").format(count=len(card.events)),
                _("Tasks ({count} open)").format(count=open_tasks),
                _("Messages & invoices ({count})").format(
                    count=len(card.messages) + len(card.invoices)
                ),
                _("Actions fired ({count})").format(count=len(card.actions)),
            ]
        )
        with tabs[0]:
            _fields_form(conveyor, rs, d)
        with tabs[1]:
            if card.events.empty:
                st.caption(_("No history yet."))
            else:
                st.dataframe(
                    local_times(card.events.iloc[::-1], ["at"])[
                        ["at", "kind_label", "actor", "what"]
                    ],
                    hide_index=True,
                    width="stretch",
                    column_config={
                        "at": _("When"),
                        "kind_label": _("Event"),
                        "actor": _("By"),
                        "what": st.column_config.TextColumn(_("What"), width="large"),
                    },
                )
        with tabs[2]:
            _tasks(conveyor, card.tasks)
        with tabs[3]:
            if card.messages.empty and card.invoices.empty:
                st.caption(_("No messages or invoices yet."))
            if not card.messages.empty:
                st.markdown("**" + _("Messages") + "**")
                view = local_times(card.messages, ["created_at", "sent_at"])
                view["status"] = view["status"].map(lambda x: _message_status(x))
                st.dataframe(
                    view[
                        [
                            "created_at",
                            "channel",
                            "to",
                            "text",
                            "status",
                            "sent_at",
                            "gateway_id",
                            "error",
                        ]
                    ],
                    hide_index=True,
                    width="stretch",
                    column_config={
                        "created_at": _("When"),
                        "channel": _("Channel"),
                        "to": _("To"),
                        "text": _("Text"),
                        "status": _("Status"),
                        "sent_at": _("Sent at"),
                        "gateway_id": _("Gateway id"),
                        "error": _("Gateway's answer"),
                    },
                )
            if not card.invoices.empty:
                st.markdown("**" + _("Invoices") + "**")
                invoices = local_times(card.invoices, ["created_at"])
                if "amount" in invoices:
                    invoices["amount"] = invoices["amount"].map(lambda a: money(a, rs.currency))
                st.dataframe(
                    invoices,
                    hide_index=True,
                    width="stretch",
                    column_config={
                        "number": _("Number"),
                        "amount": _("Amount"),
                        "created_at": _("When"),
                    },
                )
        with tabs[4]:
            if card.actions.empty:
                st.caption(_("No rule has fired for this deal yet."))
            else:
                _fired(card.actions)


def _fired(actions: pd.DataFrame) -> None:
    """What each rule did and why, one box each: the why wraps over lines instead of being cut."""
    status_colour = {"done": "green", "pending": "blue", "sending": "blue", "failed": "orange"}
    for a in local_times(actions, ["created_at"]).itertuples():
        with st.container(border=True, gap="xsmall"):
            colour = status_colour.get(a.status, "red")
            st.markdown(
                f"**{md(a.rule_name)}** · :{colour}-badge[{md(a.status)}] · "
                f":gray-badge[v{a.version}] · {md(a.created_at)}"
            )
            st.markdown(md(a.summary))
            if a.reason:
                st.caption(
                    _("Why:")
                    + "\n"
                    + "\n".join(f"- {md(line)}" for line in str(a.reason).splitlines())
                )
            if a.error:
                st.markdown(f":red[{md(a.error)}]")


def _moves(conveyor: Conveyor, card: reports.DealCard) -> None:
    st.markdown("**" + _("Move to stage") + "**")
    if not card.allowed_moves:
        st.caption(_("No move is allowed from this stage."))
        return
    cols = st.columns(min(len(card.allowed_moves), 3))
    for i, (stage_id, name) in enumerate(card.allowed_moves):
        target = card.ruleset.stage(stage_id)
        icon = KIND_ICON[target.kind.value] if target else ""
        if cols[i % len(cols)].button(
            f"{icon} → {name}", key=f"{KEY}move_{card.state.id}_{stage_id}", width="stretch"
        ):
            if apply_change(
                conveyor,
                lambda s=stage_id: conveyor.move_deal(card.state.id, s),
                _("Moved to “{stage}”.").format(stage=md(name)),
                FLASH,
            ):
                st.rerun()


def _events(conveyor: Conveyor, rs: RuleSet, d: DealState) -> None:
    """One "Record: <label>" per event the funnel declares; events that carry fields get a small form."""
    st.markdown("**" + _("What happened") + "**")
    plain = [ev for ev in rs.events if not ev.fields]
    if plain:
        row = st.container(horizontal=True, gap="small")
        for ev in plain:
            event = reports.event_label(rs, ev.name)
            help_text = (
                _("Already recorded; recording it again updates the time.")
                if ev.name in d.signals
                else None
            )
            if row.button(
                _("Record: {event}").format(event=md(event)),
                key=f"{KEY}ev_{ev.name}_{d.id}",
                width="content",
                help=help_text,
            ):
                if apply_change(
                    conveyor,
                    lambda n=ev.name: conveyor.record_event(d.id, n),
                    _("Recorded: {event}.").format(event=md(event)),
                    FLASH,
                ):
                    st.rerun()
    for ev in (ev for ev in rs.events if ev.fields):
        event = reports.event_label(rs, ev.name)
        with st.form(f"{KEY}ev_{ev.name}_{d.id}", border=True):
            targets = [_carried_field(rs, name) for name in ev.fields.values()]
            values = field_widgets(
                targets, {}, f"{KEY}ev_{ev.name}_{d.id}_", columns=min(len(targets), 2)
            )
            if st.form_submit_button(_("Record: {event}").format(event=md(event)), width="stretch"):
                data = {
                    key: values[name]
                    for key, name in ev.fields.items()
                    if values.get(name) is not None
                }
                if apply_change(
                    conveyor,
                    lambda n=ev.name, data=data: conveyor.record_event(d.id, n, data=data),
                    _("Recorded: {event}.").format(event=md(event)),
                    FLASH,
                ):
                    st.rerun()
    with st.form(f"{KEY}call_{d.id}", border=True):
        c1, c2 = st.columns([1, 1], vertical_alignment="bottom")
        note = c1.text_input(
            _("Call note"), placeholder=_("What was agreed"), key=f"{KEY}call_note_{d.id}"
        )
        if c2.form_submit_button("📞 " + _("Log a call"), width="stretch"):
            if apply_change(
                conveyor,
                lambda: conveyor.record_activity(d.id, "call", note.strip()),
                _("Call logged (counts as manager activity)."),
                FLASH,
            ):
                st.rerun()


def _fields_form(conveyor: Conveyor, rs: RuleSet, d: DealState) -> None:
    with st.form(f"{KEY}fields_{d.id}", border=False):
        c1, c2 = st.columns(2)
        values: dict[str, Any] = {
            "title": c1.text_input(_("Title"), value=d.title, key=f"{KEY}f_{d.id}_title"),
            "phone": c2.text_input(_("Phone"), value=d.phone, key=f"{KEY}f_{d.id}_phone"),
            "email": c1.text_input(_("E-mail"), value=d.email, key=f"{KEY}f_{d.id}_email"),
            # No min_value: a stored negative amount is shown as it is, and the engine refuses bad input.
            "amount": c2.number_input(
                _("Amount"), value=_number_value(d.amount), step=1000.0, key=f"{KEY}f_{d.id}_amount"
            ),
        }
        if not _editable_number(d.amount) and d.amount is not None:
            c2.caption(
                _(
                    "Stored amount {amount} cannot be edited here; type a new one to replace it."
                ).format(amount=repr(d.amount))
            )
        if rs.fields:
            st.markdown("**" + _("Funnel fields") + "**")
        values.update(field_widgets(rs.fields, d.fields, f"{KEY}f_{d.id}_"))
        saved = st.form_submit_button(_("Save changes"), type="primary")
    if not saved:
        return
    current = {"title": d.title, "phone": d.phone, "email": d.email, "amount": d.amount, **d.fields}
    numeric = {"amount"} | {fd.name for fd in rs.fields if fd.type is FieldType.NUMERIC}
    # A stored number the widget could not show (inf, text) came back empty: that is not an edit.
    kept = {
        k
        for k in numeric
        if values.get(k) is None
        and current.get(k) is not None
        and not _editable_number(current.get(k))
    }
    changed = {k: v for k, v in values.items() if k not in kept and not _same(current.get(k), v)}
    if not changed:
        st.info(_("Nothing changed."))
        return
    if apply_change(
        conveyor,
        lambda: conveyor.update_deal(d.id, changed),
        _("Saved: {fields}.").format(fields=", ".join(_field_label(rs, k) for k in changed)),
        FLASH,
    ):
        st.rerun()


def _carried_field(rs: RuleSet, name: str) -> FieldDef:
    """The field an event's data is written into, as a widget needs it (built-ins: amount or text)."""
    fd = rs.field(name)
    if fd is not None:
        return fd
    kind = FieldType.NUMERIC if name == "amount" else FieldType.TEXT
    return FieldDef(name=name, label=_(name.capitalize()), type=kind)


def _editable_number(value: Any) -> bool:
    """A number a ``st.number_input`` can hold (Streamlit refuses inf, NaN and values beyond a double)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _number_value(value: Any) -> float | None:
    """The widget's starting value: the stored number, or empty when it cannot be shown in the widget."""
    return float(value) if _editable_number(value) else None


def _same(old: Any, new: Any) -> bool:
    # An unset boolean reads as an unticked box, an unset text as an empty input.
    if old in (None, "", False) and new in (None, "", False):
        return True
    if isinstance(old, int | float) and isinstance(new, int | float) and not isinstance(old, bool):
        return float(old) == float(new)
    return old == new


def _tasks(conveyor: Conveyor, tasks: pd.DataFrame) -> None:
    if tasks.empty:
        st.caption(_("No tasks for this deal."))
        return
    now = conveyor.clock.now()
    for t in tasks.itertuples():
        if t.status != "open":
            continue
        with st.container(border=True):
            a, b = st.columns([5, 1], vertical_alignment="center")
            badge = (
                ":red-badge[" + _("HIGH") + "]"
                if t.priority in reports.HIGH_PRIORITIES
                else ":gray-badge[" + _("normal") + "]"
            )
            late = (
                " :orange-badge[" + _("overdue") + "]"
                if t.kind == "task" and t.due_at is not None and t.due_at < now
                else ""
            )
            a.markdown(f"{badge}{late} {md(t.title)}")
            a.caption(
                _("{kind} · due {due} · {manager}").format(
                    kind=_(t.kind),
                    due=when(t.due_at),
                    manager=md(t.manager) or _("no manager"),
                )
            )
            if b.button(_("Done"), key=f"{KEY}task_done_{t.id}", width="stretch"):
                if apply_change(
                    conveyor,
                    lambda tid=int(t.id): conveyor.complete_task(tid),
                    _("Task marked done."),
                    FLASH,
                ):
                    st.rerun()
    # Done and cancelled apart: a task the deal left behind is not work a manager did.
    for status, title in (("done", _("Done ({count})")), ("cancelled", _("Cancelled ({count})"))):
        closed = tasks[tasks["status"] == status]
        if closed.empty:
            continue
        with st.expander(title.format(count=len(closed))):
            st.dataframe(
                local_times(closed, ["due_at", "done_at"])[
                    ["title", "status_text", "kind", "priority", "done_at", "manager"]
                ],
                hide_index=True,
                width="stretch",
                column_config={
                    "title": _("Task"),
                    "status_text": st.column_config.TextColumn(_("State"), width="large"),
                    "kind": _("Kind"),
                    "priority": _("Priority"),
                    "done_at": _("Closed"),
                    "manager": _("Manager"),
                },
            )


def _option(value: str) -> str:
    """A select field's option as shown: the sample funnels' yes/no in the reader's language."""
    return {"": "—", "yes": _("yes"), "no": _("no")}.get(value, value)


def _message_status(status: str) -> str:
    shown = MESSAGE_STATUS.get(status)
    if shown is None:
        return status
    icon, _sep, text = shown.partition(" ")
    return f"{icon} {_(text)}"


def _field_label(rs: RuleSet, name: str) -> str:
    fd = rs.field(name)
    if fd is not None and label(fd.label):
        return label(fd.label)
    return {
        "title": _("Title"),
        "phone": _("Phone"),
        "email": _("E-mail"),
        "amount": _("Amount"),
    }.get(name, name)


def md(text: Any) -> str:
    """User text inside Markdown: shown as typed (no accidental bold, links or colour directives)."""
    out = str(text or "")
    for ch in "\\`*_[]<>#|~:$":
        out = out.replace(ch, "\\" + ch)
    return out

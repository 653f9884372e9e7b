"""One deal's card on the deals page: its facts, moves, declared events, fields, history, tasks,
messages, invoices and what each rule did and why. Every button is a real engine change."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from builder import session
from builder.state import (
    get_reader,
)
from builder.views.shared import (
    FLASH,
    KEY,
    KIND_BADGE,
    KIND_ICON,
    apply_change,
    editable_number,
    field_widgets,
    local_times,
    md,
    message_status,
    money,
    number_value,
    when,
)
from engine.core import reports
from engine.core.access import Permission
from engine.core.conveyor import Conveyor
from engine.document.labels import label
from engine.document.ruleset import FieldDef, FieldType, RuleSet
from engine.errors import ConveyorError
from engine.i18n import _
from engine.rules.deal import DealState

__all__ = ["deal_view"]


def deal_view(conveyor: Conveyor, deal_id: int) -> None:
    try:
        card = get_reader().reports.deal_card(deal_id, actor=session.current_actor())
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
        # What the role may not change is not shown (the engine refuses it anyway).
        if session.can(Permission.MOVE_DEALS):
            _moves(conveyor, card)
        if session.can(Permission.RECORD_EVENTS):
            _events(conveyor, rs, d)
        if session.can(Permission.REASSIGN_DEALS):  # others read the manager in the facts above
            _give_to(conveyor, d)
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
            if session.can(Permission.WRITE_DEALS):
                _fields_form(conveyor, rs, d)
            else:
                _fields_read_only(rs, d)
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
                view["status"] = view["status"].map(lambda x: message_status(x))
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


def _give_to(conveyor: Conveyor, d: DealState) -> None:
    """The owner gives the deal to another active manager; its open tasks go with it."""
    st.markdown("**" + _("Manager") + "**")
    names = [m.name for m in get_reader().deals.managers() if m.active]
    if not names:
        st.caption(_("No active manager to give the deal to."))
        return
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    chosen = c1.selectbox(
        _("Manager"),
        names,
        index=names.index(d.manager_name) if d.manager_name in names else None,
        placeholder=_("Choose an active manager"),
        key=f"{KEY}give_to_{d.id}",
        label_visibility="collapsed",
    )
    if c2.button(
        _("Give to"),
        key=f"{KEY}give_{d.id}",
        width="stretch",
        disabled=chosen is None or chosen == d.manager_name,
        help=_("The deal's open tasks go to the new manager as well."),
    ):
        if apply_change(
            conveyor,
            lambda: conveyor.deals.reassign(d.id, chosen, actor=session.require_actor()),
            _("Deal given to {manager}.").format(manager=md(chosen)),
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
                _("Amount"), value=number_value(d.amount), step=1000.0, key=f"{KEY}f_{d.id}_amount"
            ),
        }
        if not editable_number(d.amount) and d.amount is not None:
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
        and not editable_number(current.get(k))
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


def _fields_read_only(rs: RuleSet, d: DealState) -> None:
    """The deal's fields for a role that may not change them: a table, no form."""
    values = {"title": d.title, "phone": d.phone, "email": d.email, "amount": d.amount, **d.fields}
    st.dataframe(
        pd.DataFrame(
            [
                {_("Field"): _field_label(rs, k), _("Value"): "" if v is None else str(v)}
                for k, v in values.items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def _carried_field(rs: RuleSet, name: str) -> FieldDef:
    """The field an event's data is written into, as a widget needs it (built-ins: amount or text)."""
    fd = rs.field(name)
    if fd is not None:
        return fd
    kind = FieldType.NUMERIC if name == "amount" else FieldType.TEXT
    return FieldDef(name=name, label=_(name.capitalize()), type=kind)


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
            if session.can(Permission.COMPLETE_TASKS) and b.button(
                _("Done"), key=f"{KEY}task_done_{t.id}", width="stretch"
            ):
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

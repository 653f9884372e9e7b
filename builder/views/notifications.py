"""Builder page: where a manager is told of notifications, urgent tasks and the daily digest.

A small settings form over ``Conveyor.manager_channels``: a channel the config file configures and
the address on it (a Telegram chat id, an e-mail address, a phone number), or none (the builder
only). A manager sets their own; the owner may pick any manager. Below, the latest messages to that
manager with their honest states.
"""

from __future__ import annotations

import streamlit as st

from builder import session
from builder.state import get_conveyor, get_reader, page_boundary, show_error
from builder.views.shared import message_status
from engine.clock import for_display
from engine.core.access import Actor, Role
from engine.i18n import _

KEY = "notify_"
NONE = "none"


def _label(channel: str) -> str:
    return {
        NONE: _("Only in the builder"),
        "telegram": _("Telegram"),
        "email": _("E-mail"),
        "sms": _("SMS"),
    }.get(channel, channel)


def _placeholder(channel: str) -> str:
    return {
        "telegram": _("chat id, e.g. 123456789"),
        "email": _("e.g. olena@techflow.example"),
        "sms": _("e.g. +380501110001"),
    }.get(channel, "")


def whose() -> tuple[str | None, Actor | str]:
    """The manager whose settings this page shows, and who changes them.

    A signed-in manager sees their own; the owner (or the builder without sign-in) picks a manager.
    """
    signed = session.signed_in_user()
    managers = get_reader().deals.managers()
    if signed is not None and signed.role is Role.MANAGER:
        own = [m.name for m in managers if m.id == signed.manager_id]
        return (own[0] if own else None), signed.actor
    names = [m.name for m in managers]
    actor: Actor | str = signed.actor if signed is not None else "owner"
    if not names:
        return None, actor
    unreachable = get_conveyor().manager_channels.unreachable()
    if unreachable:  # the owner sees at once who would miss a lead they are not looking at
        st.warning(
            _(
                "Told only in the builder (no channel, or one the config file does not configure):"
                " {names}. Their notifications, urgent tasks and digests are recorded, not sent."
            ).format(names=", ".join(unreachable)),
            icon="⚠️",
        )
    return st.selectbox(_("Manager"), names, key=KEY + "manager"), actor


@page_boundary
def render() -> None:
    st.title("🔔 " + _("My notifications"))
    st.caption(
        _(
            "Where you are told of notifications, urgent tasks and your daily digest. Without a"
            " channel they are kept here, in the builder."
        )
    )
    manager, actor = whose()
    if manager is None:
        st.info(_("There are no managers yet."))
        return
    channels = get_conveyor().manager_channels
    current = channels.get(manager)
    options = [NONE, *channels.configured()]
    if current.channel and current.channel not in options:
        options.append(current.channel)  # kept, though the config no longer configures it
    with st.form(KEY + "form"):
        channel = st.selectbox(
            _("Channel"),
            options,
            index=options.index(current.channel or NONE),
            format_func=_label,
            key=KEY + "channel",
        )
        address = st.text_input(
            _("Address"),
            value=current.address or "",
            placeholder=_placeholder(channel),
            key=KEY + "address",
            help=_(
                "A Telegram chat id (open the bot, send /start), an e-mail address or a phone number."
            ),
        )
        saved = st.form_submit_button(_("Save"), type="primary")
    if saved:
        preference = NONE if channel == NONE else f"{channel}:{address}"
        try:
            result = channels.set(manager, preference, actor=actor)
        except Exception as exc:  # noqa: BLE001 - shown as one red box, nothing saved
            show_error(exc)
        else:
            st.success(
                _("Saved: {where}.").format(
                    where=_label(NONE) if result.channel is None else str(result)
                ),
                icon="💾",
            )
    if not channels.configured():
        st.caption(
            _(
                "No channel is configured in the config file (conveyor.toml): see docs/operations.md."
            )
        )
    recent = get_reader().manager_channels.recent(manager)
    if recent:
        st.subheader(_("Latest messages to {name}").format(name=manager))
        st.dataframe(
            [
                {
                    _("time"): for_display(m.created_at),
                    _("channel"): m.channel,
                    _("state"): message_status(m.status),
                    _("text"): m.text.splitlines()[0] if m.text else "",
                }
                for m in recent
            ],
            hide_index=True,
            width="stretch",
        )

"""What the manager pages share: the deals page's session keys and badges, applying a change and
showing its outcome, times and money as the reader reads them, the funnel picker, field widgets."""

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
    shared_funnel_picker,
    show_error,
)
from engine.core import reports
from engine.core.conveyor import Conveyor
from engine.document.labels import label
from engine.document.ruleset import FieldDef, FieldType
from engine.errors import ConveyorError
from engine.i18n import N_, _, format_datetime, format_money, format_number

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


def message_status(status: str) -> str:
    """A message's state as a person reads it, in their language ("📝 recorded (no provider …)")."""
    shown = MESSAGE_STATUS.get(status)
    if shown is None:
        return status
    icon, _sep, text = shown.partition(" ")
    return f"{icon} {_(text)}"


KIND_NAMES = {"open": N_("open"), "won": N_("won"), "lost": N_("lost")}


#: Task kinds and priorities the pages show through ``_(value)``: listed here for the catalogue.
WORDS = (N_("task"), N_("notification"), N_("high"), N_("normal"), N_("low"))


CARDS_PER_STAGE = 20


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
                        title, options, index=index, format_func=lambda o: option_text(o), key=key
                    )
                    or None
                )
            elif fd.type is FieldType.NUMERIC:
                out[fd.name] = st.number_input(title, value=number_value(current), key=key)
            elif fd.type is FieldType.BOOLEAN:
                out[fd.name] = st.checkbox(title, value=bool(current), key=key)
            else:
                out[fd.name] = (
                    st.text_input(title, value="" if current is None else str(current), key=key)
                    or None
                )
    return out


def editable_number(value: Any) -> bool:
    """A number a ``st.number_input`` can hold (Streamlit refuses inf, NaN and values beyond a double)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def number_value(value: Any) -> float | None:
    """The widget's starting value: the stored number, or empty when it cannot be shown in the widget."""
    return float(value) if editable_number(value) else None


def option_text(value: str) -> str:
    """A select field's option as shown: the sample funnels' yes/no in the reader's language."""
    return {"": "—", "yes": _("yes"), "no": _("no")}.get(value, value)


def md(text: Any) -> str:
    """User text inside Markdown: shown as typed (no accidental bold, links or colour directives)."""
    out = str(text or "")
    for ch in "\\`*_[]<>#|~:$":
        out = out.replace(ch, "\\" + ch)
    return out

"""Builder page: the HTTP doors, read-only — every call to a signed hook (time, hook, event id,
outcome) and the website forms with a copy-paste HTML snippet. Hooks, keys and forms are created
from the command line (``conveyor hooks create``, ``conveyor forms create``), so no secret ever
reaches a page."""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from builder.state import get_reader, page_boundary
from engine.clock import for_display
from engine.core.forms import HONEYPOT, TOKEN_FIELD
from engine.core.links import public_url

KEY = "doors_"


def snippet(funnel: str, token: str, fields: list[str]) -> str:
    """The HTML form a website pastes to send leads to ``POST /forms/{funnel}``."""
    inputs = "\n".join(
        f'  <label>{html.escape(f)} <input name="{html.escape(f)}"></label>' for f in fields
    )
    return (
        f'<form method="post" action="{html.escape(public_url())}/forms/{html.escape(funnel)}">\n'
        f'  <input type="hidden" name="{TOKEN_FIELD}" value="{html.escape(token)}">\n{inputs}\n'
        f'  <input name="{HONEYPOT}" style="display:none" tabindex="-1" autocomplete="off">\n'
        '  <button type="submit">Send</button>\n</form>'
    )


@page_boundary
def render() -> None:
    st.title("🔌 Hooks & forms")
    reader = get_reader()
    st.subheader("Hook calls")
    st.caption(
        "Every call to POST /hooks/NAME, newest first. `conveyor hooks create NAME` adds a hook."
    )
    calls = reader.hooks.calls(
        limit=int(st.number_input("Show the latest", 10, 1000, 100, key=KEY + "n"))
    )
    if calls:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "time": for_display(c.at, "%Y-%m-%d %H:%M:%S"),
                        "hook": c.hook,
                        "event id": c.event_id or "",
                        "outcome": c.outcome,
                        "detail": c.detail,
                    }
                    for c in calls
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("No hook has been called yet.")
    st.subheader("Website forms")
    forms = [f for f in reader.forms.list() if not f.revoked]
    if not forms:
        st.info("No form yet: `conveyor forms create FUNNEL` prints a form token.")
    for f in forms:
        st.markdown(
            f"**{f.funnel}** — fields {', '.join(f.fields)}; {f.rate_per_hour} per hour per address;"
            f" origins {', '.join(f.origins) or 'any (no browser CORS)'}"
        )
        st.code(snippet(f.funnel, f.token, f.fields), language="html")

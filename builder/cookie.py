"""The session cookie that keeps a user signed in across page reloads (a reload is a new Streamlit session).

Streamlit reads cookies (``st.context.cookies``, those the browser sent when the page connected) but
cannot set them, so a tiny custom component (components v2, no iframe) writes ``document.cookie``:
``conveyor_session``, the stored session's opaque id signed with itsdangerous under the server's key
(``Conveyor.sessions.cookie``), ``SameSite=Strict``, ``Secure`` over https, never ``HttpOnly`` (JavaScript
cannot set that flag). It lives only as long as the session may; sign-out clears it and ends the session
on the server, so a copy of the cookie resumes nothing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import streamlit as st

__all__ = ["NAME", "clear_cookie", "sent_cookie", "write_cookie"]

NAME = "conveyor_session"
SCRIPT = Path(__file__).resolve().parent / "static" / "session_cookie.js"


@cache
def _component() -> Any:
    return st.components.v2.component(
        "conveyor_session_cookie", html="", js=SCRIPT.read_text(encoding="utf-8")
    )


def sent_cookie() -> str | None:
    """The session cookie this browser sent when the page connected (AppTest has none)."""
    try:
        value = st.context.cookies.get(NAME)
    except Exception:  # noqa: BLE001 - no browser behind this run (AppTest, bare mode)
        return None
    return value if isinstance(value, str) and value else None


def write_cookie(value: str, max_age: int) -> None:
    """Keep ``value`` in the browser for ``max_age`` seconds (drawn on every signed-in run: a run that
    switches page before the browser draws it does not lose it)."""
    _component()(key="auth_cookie", data={"name": NAME, "value": value, "max_age": max_age})


def clear_cookie() -> None:
    """Remove the session cookie from the browser."""
    _component()(key="auth_cookie_clear", data={"name": NAME, "clear": True})

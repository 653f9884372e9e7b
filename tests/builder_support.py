"""Helpers shared by the builder's AppTest suites: one app session that switches pages, widget lookup,
error text, and Markdown-escaped text read back as typed. The demo-database fixtures are in conftest."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


def _script(root: str) -> None:
    # Runs inside AppTest: the page module is imported from the project, as the router does.
    import importlib
    import sys

    import streamlit as st

    if root not in sys.path:
        sys.path.insert(0, root)
    importlib.import_module(f"builder.views.{st.session_state.get('_page', 'designer')}").render()


def session_app(page: str = "designer") -> AppTest:
    """One session that renders the page named in ``session_state['_page']`` (session state persists)."""
    at = AppTest.from_function(_script, args=(str(ROOT),), default_timeout=30)
    at.session_state["_page"] = page
    return at


def go(at: AppTest, page: str) -> AppTest:
    at.session_state["_page"] = page
    return at.run()


def by_label(widgets, label: str):  # noqa: ANN001, ANN201 - any AppTest widget list
    found = [w for w in widgets if w.label == label]
    assert found, f"no widget labelled {label!r}; have {[w.label for w in widgets]}"
    return found[0]


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def plain(markdown: str) -> str:
    """Page text without the backslashes that keep user text from being read as Markdown."""
    return re.sub(r"\\(.)", r"\1", markdown)

"""Conveyor builder: the router. Each page is a thin function in ``builder/views``."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run builder/app.py` puts builder/ on sys.path, not the project root.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from builder import state  # noqa: E402
from builder.views import (  # noqa: E402
    actions_review,
    analytics,
    deals,
    designer,
    doors,
    dry_run,
    rule_editor,
    versions,
)
from engine.i18n import _  # noqa: E402

st.set_page_config(page_title="Conveyor", page_icon="🛠️", layout="wide")


def home() -> None:
    """The app's root URL "/": opens the Designer at its own address, /designer."""
    st.switch_page(state.page("designer"))


# The language first: page titles, the menu and every page are drawn in it.
state.language_switch()

pages = {
    _("Design"): [
        # Streamlit serves the default page only at "/" (its url_path then answers "Page not found"), so
        # the default is this hidden page and the Designer keeps a real address: links to /designer work.
        st.Page(
            home, title="Conveyor", icon="🛠️", url_path="home", default=True, visibility="hidden"
        ),
        st.Page(designer.render, title=_("Designer"), icon="🗺️", url_path="designer"),
        st.Page(rule_editor.render, title=_("Rule editor"), icon="🧩", url_path="rules"),
        st.Page(
            versions.render, title=_("Versions & import/export"), icon="🗂️", url_path="versions"
        ),
        st.Page(dry_run.render, title=_("Dry run"), icon="🧪", url_path="dry-run"),
    ],
    _("Work"): [
        st.Page(deals.render, title=_("Deals"), icon="💼", url_path="deals"),
        st.Page(actions_review.render, title=_("Actions review"), icon="✅", url_path="actions"),
        st.Page(analytics.render, title=_("Analytics"), icon="📈", url_path="analytics"),
        st.Page(doors.render, title=_("Hooks & forms"), icon="🔌", url_path="doors"),
    ],
}
state.register_pages({p.url_path: p for group in pages.values() for p in group if p.url_path})
st.navigation(pages).run()

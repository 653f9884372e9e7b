"""Conveyor builder: the router. Each page is a thin function in ``builder/views``.

Nobody sees a page before signing in (``builder.session.gate``): until then the only page, at every
address, is the sign-in form. Signed in, the menu holds the pages the role may open; the address of
any other page answers with a refusal (and the engine refuses the change anyway).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run builder/app.py` puts builder/ on sys.path, not the project root.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from builder import session, state  # noqa: E402
from builder.views import (  # noqa: E402
    actions_review,
    analytics,
    audit,
    deals,
    designer,
    doors,
    dry_run,
    my_day,
    notifications,
    rule_editor,
    versions,
)
from engine.i18n import _  # noqa: E402

st.set_page_config(page_title="Conveyor", page_icon="🛠️", layout="wide")


def home() -> None:
    """The app's root URL "/": the owner's Designer, or another role's first page, at its own address."""
    signed = session.signed_in_user()
    # A manager's first page is their day (My day): what is due, and which deals need them.
    role = signed.role.value if signed is not None else ""
    first = {"owner": "designer", "manager": "day"}.get(role, "deals")
    st.switch_page(state.page(first))


# The language first: page titles, the menu and every page are drawn in it.
state.language_switch(remember=session.remember_language)

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
        st.Page(my_day.render, title=_("My day"), icon="☀️", url_path="day"),
        st.Page(deals.render, title=_("Deals"), icon="💼", url_path="deals"),
        st.Page(actions_review.render, title=_("Actions review"), icon="✅", url_path="actions"),
        st.Page(analytics.render, title=_("Analytics"), icon="📈", url_path="analytics"),
        st.Page(doors.render, title=_("Hooks & forms"), icon="🔌", url_path="doors"),
        st.Page(
            notifications.render,
            title=_("My notifications"),
            icon="🔔",
            url_path="notifications",
        ),
        st.Page(audit.render, title=_("Audit trail"), icon="🧾", url_path="audit"),
    ],
}
signed = session.gate()
if signed is None:
    # No funnel data before sign-in: the form, at every address (a link to /deals signs in, then opens
    # the Deals page; an unknown address would be Streamlit's "Page not found" over the form).
    st.navigation(
        [
            st.Page(
                session.sign_in_page, title=_("Sign in"), icon="🔒", url_path="signin", default=True
            )
        ]
        + [
            st.Page(session.sign_in_at(p.url_path), title=_("Sign in"), url_path=p.url_path)
            for group in pages.values()
            for p in group
            if p.url_path
        ],
        position="hidden",
    ).run()
    st.stop()

session.sidebar()
# A page the role may not open leaves the menu; its address stays, answering with a refusal.
# (The default page's url_path reads "": it is the root, which every role may open.)
refused = [
    p
    for group in pages.values()
    for p in group
    if not session.may_open(p.url_path or "home", signed)
]
pages = {
    group: [p for p in items if session.may_open(p.url_path or "home", signed)]
    for group, items in pages.items()
}
pages = {group: items for group, items in pages.items() if items}
pages.setdefault(_("Design"), []).extend(
    st.Page(session.refusal(p.title), title=p.title, url_path=p.url_path, visibility="hidden")
    for p in refused
)
state.register_pages({p.url_path: p for group in pages.values() for p in group if p.url_path})
navigation = st.navigation(pages)
if st.session_state.pop(session.GO_HOME, False):
    home()  # after a sign-out, the next user starts on their own first page, not the last one's
navigation.run()

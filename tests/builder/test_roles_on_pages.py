"""Every page for every role (AppTest): a role's pages render without an error and show only what the
role may use; the pages it may not open are out of its menu and their addresses refuse."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from builder.session import may_open, refusal
from engine.core.conveyor import Conveyor
from tests.builder.support import errors, session_app, signed_in

#: view module → url_path, for every page of the router.
PAGES = {
    "designer": "designer",
    "rule_editor": "rules",
    "versions": "versions",
    "dry_run": "dry-run",
    "my_day": "day",
    "deals": "deals",
    "actions_review": "actions",
    "analytics": "analytics",
    "doors": "doors",
    "audit": "audit",
    "notifications": "notifications",
}
MAY_OPEN = {
    "owner": set(PAGES),
    "manager": {"dry_run", "my_day", "deals", "actions_review", "notifications"},
    "viewer": set(PAGES) - {"my_day", "notifications"},
}
#: Buttons that change something, which a viewer never sees.
CHANGES = (
    "Done",
    "Retry",
    "Make active",
    "💾 Save version",
    "Create deal",
    "Save changes",
    "Give to",
)


def _buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


@pytest.mark.parametrize("role", list(MAY_OPEN))
@pytest.mark.parametrize("view", list(PAGES))
def test_every_page_for_every_role(demo_db: Conveyor, role: str, view: str) -> None:
    signed = signed_in(role)
    allowed = view in MAY_OPEN[role]
    assert may_open(PAGES[view], signed) is allowed
    if not allowed:  # the router puts the refusal at its address instead of the page
        at = AppTest.from_function(_refuse, args=(view,), default_timeout=30)
        at.session_state["auth_session"] = signed
        at.run()
        assert not at.exception
        assert f"The {role} role may not open {view}." in errors(at)
        return
    at = session_app(view, role).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, errors(at)
    if role == "viewer":
        shown = [b for b in _buttons(at) if b in CHANGES or b.startswith("→")]
        assert shown == [], shown


def _refuse(view: str) -> None:
    from builder.session import refusal

    refusal(view)()


def test_a_manager_sees_only_their_own_deals_on_the_board(demo_db: Conveyor) -> None:
    olena = signed_in("manager")
    mine = set(demo_db.reports.deal_board("techflow", actor=olena.actor)["title"])
    everyone = set(demo_db.reports.deal_board("techflow")["title"])
    assert mine and mine < everyone
    at = session_app("deals", "manager").run()
    assert not at.exception and not at.error, errors(at)
    text = " ".join(b.label for b in at.button) + " ".join(m.value for m in at.markdown)
    for title in everyone - mine:
        assert title not in text
    # Her own are there, each one click from its card.
    assert any(t in text for t in mine)


def test_a_viewer_opening_a_deal_reads_its_fields_and_cannot_move_it(demo_db: Conveyor) -> None:
    deal = demo_db.deal_id("D-1")
    at = session_app("deals", "viewer")
    at.session_state["deals_selected"] = deal
    at.run()
    assert not at.exception and not at.error, errors(at)
    assert not [b for b in _buttons(at) if b.startswith("→") or b in CHANGES]
    assert refusal  # the module's refusal page is the one the router uses


def test_a_viewer_reads_the_designer_and_gets_no_editing_tools(demo_db: Conveyor) -> None:
    at = session_app("designer", "viewer")
    at.session_state["designer_pick"] = "stage:proposal"
    at.run()
    assert not at.exception and not at.error, errors(at)
    captions = " ".join(c.value for c in at.caption)
    assert "Read-only canvas" in captions
    assert "Read only: your role may look at the funnel, not change it." in " ".join(
        i.value for i in at.info
    )
    labels = {e.label for e in at.expander}
    for tool in ("➕ Add a stage", "➕ New funnel from a template"):
        assert tool not in labels
    assert not [t for t in at.text_input if t.label.startswith("Stage name")]  # text, not boxes
    assert not [b for b in _buttons(at) if "Delete stage" in b or b.startswith("+ ")]
    owner = session_app("designer", "owner")
    owner.session_state["designer_pick"] = "stage:proposal"
    owner.run()
    assert [t for t in owner.text_input if t.label.startswith("Stage name")]  # the owner edits it
    assert "Read-only canvas" not in " ".join(c.value for c in owner.caption)

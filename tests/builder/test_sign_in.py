"""The builder's sign-in gate, driven with AppTest over the router (builder/app.py): nothing but the form
before sign-in, wrong passwords refused and throttled, each role's first page, sign-out, sessions that
end; and the single sign-on mapping from an identity's claims to a Conveyor user."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder.session import KEY, may_open, sso_email
from engine.core.conveyor import Conveyor
from engine.core.users import FREE_ATTEMPTS
from tests.builder.support import errors, sign_in, signed_in

ROOT = Path(__file__).resolve().parents[2]


def router() -> AppTest:
    return AppTest.from_file(str(ROOT / "builder" / "app.py"), default_timeout=60)


def _texts(at: AppTest) -> str:
    return " ".join(
        [m.value for m in at.markdown]
        + [t.value for t in at.title]
        + [t.value for t in at.subheader]
        + [e.label for e in at.expander]
    )


def _submit(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="auth_name").input(name)
    at.text_input(key="auth_password").input(password)
    return at.button[0].click().run()


def test_before_sign_in_the_builder_shows_only_the_form_and_no_funnel_data(demo_db: Conveyor):
    at = router().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in to Conveyor"]
    shown = _texts(at)
    for secret in ("Acme Logistics", "techflow", "Funnel designer", "Qualification"):
        assert secret not in shown
    assert not at.dataframe and not at.metric
    assert [w.key for w in at.selectbox] == ["ui_language_w"]  # only the language switch
    assert [w.label for w in at.text_input] == ["User name", "Password"]


def test_a_wrong_password_is_refused_and_five_make_the_next_attempt_wait(demo_db: Conveyor):
    at = router().run()
    for _ in range(FREE_ATTEMPTS - 1):
        _submit(at, "owner", "not the password")
        assert "Wrong user name or password." in errors(at)
        assert KEY not in at.session_state
    _submit(at, "owner", "not the password")
    assert "wait 30 s before the next attempt" in errors(at)
    _submit(at, "owner", "demo-owner")  # the right password, too early
    assert "Too many failed sign-ins for this account: wait" in errors(at)
    assert [t.value for t in at.title] == ["Sign in to Conveyor"]
    demo_db.users.unlock("owner", actor="test")
    _submit(at, "owner", "demo-owner")
    assert not at.exception and not at.error, errors(at)
    assert at.title[0].value == "🗺️ Funnel designer"


@pytest.mark.parametrize(
    ("name", "password", "first_page"),
    [
        ("owner", "demo-owner", "🗺️ Funnel designer"),
        ("Olena Kovalenko", "demo-olena", "☀️ My day"),
        ("viewer", "demo-viewer", "💼 Deals"),
    ],
    ids=["owner", "manager", "viewer"],
)
def test_each_role_signs_in_with_its_demo_password_and_lands_on_its_first_page(
    demo_db: Conveyor, name, password, first_page
):
    at = _submit(router().run(), name, password)
    assert not at.exception and not at.error, errors(at)
    assert at.title[0].value.startswith(first_page)
    assert at.session_state[KEY].name == name
    assert any(f"Signed in as **{name}**" in c.value for c in at.caption)


def test_sign_out_shows_the_form_again(demo_db: Conveyor):
    at = sign_in(router(), "owner").run()
    assert at.title[0].value == "🗺️ Funnel designer"
    at.button(key="auth_sign_out").click().run()
    assert [t.value for t in at.title] == ["Sign in to Conveyor"]
    assert KEY not in at.session_state


def test_sign_out_forgets_the_users_toasts_drafts_and_choices_but_keeps_the_language(
    demo_db: Conveyor,
):
    at = _submit(router().run(), "owner", "demo-owner")
    assert at.title[0].value == "🗺️ Funnel designer"
    # What an owner's tab holds mid-work: a save's toast not shown yet, a draft, a chosen funnel.
    at.session_state["owner_flash"] = "Saved version 7 of 'techflow'."
    at.session_state["draft:techflow"] = {"id": "techflow"}
    at.session_state["owner_funnel_choice"] = "techflow"
    at.session_state["ui_language"] = "en"
    at.button(key="auth_sign_out").click().run()
    assert [t.value for t in at.title] == ["Sign in to Conveyor"]
    for key in ("owner_flash", "draft:techflow", "owner_funnel_choice", KEY):
        assert key not in at.session_state, key
    assert at.session_state["ui_language"] == "en"
    at = _submit(at, "viewer", "demo-viewer")
    assert not at.exception and not at.error, errors(at)
    assert at.session_state[KEY].name == "viewer"
    assert not [t for t in at.toast if "Saved version" in t.value]
    assert at.title[0].value.startswith("💼 Deals")


def test_sign_out_ends_the_stored_session(demo_db: Conveyor):
    at = _submit(router().run(), "owner", "demo-owner")
    signed = at.session_state[KEY]
    cookie = demo_db.sessions.cookie(signed)
    assert demo_db.sessions.resume_cookie(cookie) is not None  # what a reload would resume
    at.button(key="auth_sign_out").click().run()
    assert demo_db.sessions.resume_cookie(cookie) is None
    assert demo_db.audit.entries(kind="signed_out")


def test_a_session_ends_when_the_owner_disables_its_user(demo_db: Conveyor):
    at = sign_in(router(), "manager").run()
    assert at.title[0].value.startswith("☀️ My day")
    demo_db.users.disable("Olena Kovalenko", actor="test")
    at.run()
    assert [t.value for t in at.title] == ["Sign in to Conveyor"]
    assert "Your session has ended" in at.info[0].value


@pytest.mark.parametrize(
    ("role", "pages"),
    [
        (
            "owner",
            {
                "designer",
                "rules",
                "versions",
                "dry-run",
                "day",
                "deals",
                "actions",
                "analytics",
                "doors",
            },
        ),
        ("manager", {"dry-run", "day", "deals", "actions"}),
        (
            "viewer",
            {
                "designer",
                "rules",
                "versions",
                "dry-run",
                "deals",
                "actions",
                "analytics",
                "doors",
            },
        ),
    ],
)
def test_the_pages_each_role_may_open(demo_db: Conveyor, role, pages):
    everything = {
        "designer",
        "rules",
        "versions",
        "dry-run",
        "day",
        "deals",
        "actions",
        "analytics",
        "doors",
    }
    signed = signed_in(role)
    assert {p for p in everything if may_open(p, signed)} == pages


@pytest.mark.parametrize(
    ("claims", "email"),
    [
        ({"is_logged_in": True, "email": "Olena@TechFlow.example"}, "olena@techflow.example"),
        ({"is_logged_in": True, "email": "o@t.example", "email_verified": True}, "o@t.example"),
        ({"is_logged_in": True, "email": "o@t.example", "email_verified": False}, None),
        ({"is_logged_in": True}, None),
        ({"is_logged_in": True, "email": "not-an-address"}, None),
        ({"is_logged_in": False, "email": "o@t.example"}, None),
        ({}, None),
    ],
    ids=[
        "verified-by-default",
        "verified",
        "unverified",
        "no-email",
        "no-at",
        "signed-out",
        "empty",
    ],
)
def test_single_sign_on_claims_map_to_an_email_only_when_vouched_for(claims, email):
    assert sso_email(claims) == email


def test_a_single_sign_on_email_finds_its_conveyor_user(demo_db: Conveyor):
    demo_db.users.update("Olena Kovalenko", email="olena@techflow.example", actor="test")
    email = sso_email({"is_logged_in": True, "email": "OLENA@techflow.example"})
    assert email is not None
    signed = demo_db.users.sign_in_by_email(email)
    assert (signed.name, signed.role.value, signed.via) == ("Olena Kovalenko", "manager", "sso")

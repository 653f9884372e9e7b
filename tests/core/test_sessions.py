"""Stored sign-in sessions (engine.core.sessions), with no builder involved: the cookie's signed id
resumes a session after a reload; sign-out, expiry, idling, a disabled user, a new password and a forged
or foreign cookie all refuse it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.core.conveyor import Conveyor
from engine.core.sessions import TOUCH_EVERY
from engine.core.users import SESSION_IDLE, SESSION_LIFETIME

PASSWORD = "session test password"


@pytest.fixture
def signed(conveyor, monkeypatch):
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", "a test key that is long enough to sign with")
    conveyor.users.add("Olena", "manager", PASSWORD, actor="test")
    return conveyor.sessions.sign_in("Olena", PASSWORD)


def test_a_cookie_resumes_the_session_it_was_made_for(conveyor, signed):
    cookie = conveyor.sessions.cookie(signed)
    assert cookie and signed.session not in cookie  # signed and encoded, not the id as it is stored
    again = conveyor.sessions.resume_cookie(cookie)
    assert again is not None
    assert (again.name, again.role, again.signed_in_at) == (
        "Olena",
        signed.role,
        signed.signed_in_at,
    )
    assert again.actor.manager_id == signed.actor.manager_id
    assert conveyor.sessions.check(again) is not None


def test_after_sign_out_neither_the_cookie_nor_the_tab_resumes_it(conveyor, signed):
    cookie = conveyor.sessions.cookie(signed)
    conveyor.sessions.end(signed)
    assert conveyor.sessions.resume_cookie(cookie) is None
    assert conveyor.sessions.check(signed) is None
    assert [e.kind for e in conveyor.audit.entries(kind="signed_out")] == ["signed_out"]


@pytest.mark.parametrize(
    "tamper",
    [lambda c: c + "x", lambda c: c[:-3], lambda c: "not.a.cookie", lambda c: "", lambda c: c * 20],
    ids=["altered", "cut", "garbage", "empty", "too-long"],
)
def test_a_forged_cookie_resumes_nothing(conveyor, signed, tamper):
    assert conveyor.sessions.resume_cookie(tamper(conveyor.sessions.cookie(signed))) is None


def test_a_cookie_signed_with_another_installations_key_resumes_nothing(
    conveyor, signed, monkeypatch
):
    cookie = conveyor.sessions.cookie(signed)
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", "another installation's key, just as long")
    other = Conveyor(
        conveyor.engine.url.render_as_string(hide_password=False), clock=conveyor.clock
    )
    try:
        assert other.sessions.resume_cookie(cookie) is None
    finally:
        other.close()


def test_a_session_idle_too_long_or_past_its_lifetime_is_refused(conveyor, clock, signed):
    cookie = conveyor.sessions.cookie(signed)
    clock.advance(SESSION_IDLE - TOUCH_EVERY - timedelta(seconds=1))
    assert conveyor.sessions.resume_cookie(cookie) is not None  # used: idle time starts again
    clock.advance(SESSION_IDLE - TOUCH_EVERY - timedelta(seconds=1))
    assert conveyor.sessions.resume_cookie(cookie) is not None
    clock.advance(SESSION_IDLE + timedelta(seconds=1))
    assert conveyor.sessions.resume_cookie(cookie) is None

    fresh = conveyor.sessions.sign_in("Olena", PASSWORD)
    cookie = conveyor.sessions.cookie(fresh)
    while clock.now() + SESSION_IDLE / 2 < fresh.signed_in_at + SESSION_LIFETIME:
        clock.advance(SESSION_IDLE / 2)
        assert conveyor.sessions.resume_cookie(cookie) is not None
    clock.advance(SESSION_IDLE / 2)
    assert conveyor.sessions.resume_cookie(cookie) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.users.disable("Olena", actor="test"),
        lambda c: c.users.set_password("Olena", "a brand new password", actor="test"),
    ],
    ids=["user-disabled", "new-password"],
)
def test_a_disabled_user_or_a_new_password_ends_the_stored_session(conveyor, clock, signed, change):
    cookie = conveyor.sessions.cookie(signed)
    clock.advance(timedelta(seconds=1))
    change(conveyor)
    assert conveyor.sessions.resume_cookie(cookie) is None
    assert conveyor.sessions.check(signed) is None


def test_the_session_id_is_stored_only_as_a_digest(conveyor, signed):
    from sqlalchemy import text

    with conveyor.engine.connect() as db:
        stored = [tuple(r) for r in db.execute(text("SELECT digest FROM user_sessions"))]
    assert stored and all(signed.session not in row[0] for row in stored)
    assert "session=" not in repr(signed)  # never printed with the session

"""Local users on both backends: argon2 passwords, roles onto actors, disabling, throttled sign-in,
sessions that end, the managers they are, and the trail of who managed whom."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.core.access import ActorKind, Role
from engine.core.users import FREE_ATTEMPTS, SESSION_IDLE, SESSION_LIFETIME, retry_delay
from engine.errors import Forbidden, InvalidChange, NotFound, TooManyAttempts, Unauthenticated
from storage import people_repositories as people
from tests.support.sessions import db_session

PASSWORD = "correct horse battery"


def test_a_user_signs_in_with_the_password_and_acts_with_the_role(conveyor):
    conveyor.users.add("Olena", "manager", PASSWORD, actor="test")
    signed = conveyor.users.sign_in("olena", PASSWORD, address="10.0.0.1")
    actor = signed.actor
    assert (actor.kind, actor.name, actor.role) == (ActorKind.USER, "Olena", Role.MANAGER)
    assert actor.own_deals_only  # a manager sees their own deals unless the owner says otherwise
    # The managers row of the same name is theirs: deals are assigned to them.
    assert actor.manager_id == next(m.id for m in conveyor.deals.managers() if m.name == "Olena")


def test_the_password_is_stored_as_an_argon2_hash_only(conveyor):
    conveyor.users.add("owner", "owner", PASSWORD, actor="test")
    with db_session(conveyor) as s:
        stored = people.get_user_by_name(s, "owner").password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


@pytest.mark.parametrize(
    ("name", "password"),
    [("Olena", "wrong password"), ("Nobody", PASSWORD), ("Olena", "")],
    ids=["wrong-password", "unknown-name", "empty-password"],
)
def test_a_wrong_name_or_password_is_refused_with_one_message(conveyor, name, password):
    conveyor.users.add("Olena", "manager", PASSWORD, actor="test")
    with pytest.raises(Unauthenticated, match="^Wrong user name or password"):
        conveyor.users.sign_in(name, password)


def test_five_failures_make_the_account_wait_longer_each_time_until_the_owner_unlocks_it(
    conveyor, clock
):
    conveyor.users.add("Olena", "manager", PASSWORD, actor="test")
    for _ in range(FREE_ATTEMPTS - 1):
        with pytest.raises(Unauthenticated):
            conveyor.users.sign_in("Olena", "nope", address="10.0.0.1")
    with pytest.raises(TooManyAttempts, match="wait 30 s") as fifth:
        conveyor.users.sign_in("Olena", "nope", address="10.0.0.1")
    assert fifth.value.retry_after == 30
    # Even the right password now waits, from another address too: the account is throttled.
    with pytest.raises(TooManyAttempts, match="Too many failed sign-ins for this account"):
        conveyor.users.sign_in("Olena", PASSWORD, address="10.0.0.2")
    clock.advance(timedelta(seconds=31))
    with pytest.raises(TooManyAttempts, match="wait 60 s"):  # the sixth failure doubles the wait
        conveyor.users.sign_in("Olena", "nope", address="10.0.0.1")
    conveyor.users.unlock("Olena", actor="test")
    assert conveyor.users.sign_in("Olena", PASSWORD, address="10.0.0.3").name == "Olena"


def test_failures_from_one_address_make_every_account_there_wait(conveyor):
    conveyor.users.add("Olena", "manager", PASSWORD, actor="test")
    for i in range(FREE_ATTEMPTS):
        with pytest.raises(Unauthenticated):
            conveyor.users.sign_in(f"guess{i}", "nope", address="203.0.113.9")
    with pytest.raises(TooManyAttempts, match="for this address"):
        conveyor.users.sign_in("Olena", PASSWORD, address="203.0.113.9")
    assert conveyor.users.sign_in("Olena", PASSWORD, address="10.0.0.1").name == "Olena"
    conveyor.users.unlock(actor="test")  # --all
    assert conveyor.users.sign_in("Olena", PASSWORD, address="203.0.113.9").name == "Olena"


def test_the_delay_grows_and_is_capped():
    delays = [retry_delay(n) for n in range(FREE_ATTEMPTS + 12)]
    assert delays[:FREE_ATTEMPTS] == [timedelta(0)] * FREE_ATTEMPTS
    grown = delays[FREE_ATTEMPTS - 1 :]
    assert all(a <= b for a, b in zip(grown, grown[1:], strict=False))
    assert delays[-1] == timedelta(hours=1)


def test_a_disabled_user_cannot_sign_in_and_their_session_ends(conveyor):
    conveyor.users.add("Petro", "manager", PASSWORD, actor="test")
    signed = conveyor.users.sign_in("Petro", PASSWORD)
    conveyor.users.disable("Petro", actor="test")
    assert conveyor.users.resume(signed) is None
    with pytest.raises(Unauthenticated):
        conveyor.users.sign_in("Petro", PASSWORD)
    # A disabled manager takes no new deals.
    assert not next(m for m in conveyor.deals.managers() if m.name == "Petro").active
    conveyor.users.enable("Petro", actor="test")
    assert conveyor.users.sign_in("Petro", PASSWORD).name == "Petro"


def test_a_new_password_ends_the_old_sessions_and_the_old_password(conveyor, clock):
    conveyor.users.add("owner", "owner", PASSWORD, actor="test")
    signed = conveyor.users.sign_in("owner", PASSWORD)
    clock.advance(timedelta(seconds=1))
    conveyor.users.set_password("owner", "another long one", actor="test")
    assert conveyor.users.resume(signed) is None
    with pytest.raises(Unauthenticated):
        conveyor.users.sign_in("owner", PASSWORD)
    assert conveyor.users.sign_in("owner", "another long one").role is Role.OWNER


def test_a_session_expires_after_its_lifetime_and_after_idling(conveyor, clock):
    conveyor.users.add("viewer", "viewer", PASSWORD, actor="test")
    signed = conveyor.users.sign_in("viewer", PASSWORD)
    clock.advance(SESSION_IDLE - timedelta(minutes=1))
    kept = conveyor.users.resume(signed)
    assert kept is not None and kept.last_seen_at == clock.now()
    clock.advance(SESSION_IDLE + timedelta(seconds=1))
    assert conveyor.users.resume(kept) is None  # idle too long
    fresh = conveyor.users.sign_in("viewer", PASSWORD)
    while clock.now() < fresh.signed_in_at + SESSION_LIFETIME:
        fresh = conveyor.users.resume(fresh) or pytest.fail("ended before its lifetime")
        clock.advance(SESSION_IDLE / 2)
    assert conveyor.users.resume(fresh) is None  # used all along, but its lifetime is over


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(name="", role="owner", password=PASSWORD), "user name is empty"),
        (dict(name="x", role="admin", password=PASSWORD), "unknown role 'admin'"),
        (dict(name="x", role="integration", password=PASSWORD), "unknown role 'integration'"),
        (dict(name="x", role="owner", password="short"), "too short: at least 8"),
        (dict(name="a\x00b", role="owner", password=PASSWORD), "user name"),
        (dict(name="Olena", role="viewer", password=PASSWORD), "already exists"),
    ],
    ids=["empty-name", "unknown-role", "key-only-role", "short-password", "nul", "taken"],
)
def test_a_bad_new_user_is_refused_by_name_and_nothing_is_saved(conveyor, change, message):
    conveyor.users.add("Olena", "manager", PASSWORD, actor="test")
    with pytest.raises(InvalidChange, match=message):
        conveyor.users.add(**change, actor="test")
    assert [u.name for u in conveyor.users.list()] == ["Olena"]


def test_only_the_owner_manages_users(conveyor):
    conveyor.users.add("Olena", "manager", PASSWORD, actor="test")
    conveyor.users.add("viewer", "viewer", PASSWORD, actor="test")
    for name in ("Olena", "viewer"):
        actor = conveyor.users.sign_in(name, PASSWORD).actor
        with pytest.raises(Forbidden, match="may not manage users"):
            conveyor.users.add("Mallory", "owner", PASSWORD, actor=actor)
        with pytest.raises(Forbidden):
            conveyor.users.disable("Olena", actor=actor)
        with pytest.raises(Forbidden):
            conveyor.users.unlock(actor=actor)
    assert [u.name for u in conveyor.users.list()] == ["Olena", "viewer"]


def test_single_sign_on_finds_the_active_user_by_email(conveyor):
    conveyor.users.add("Iryna", "manager", None, email="Iryna@Example.COM", actor="test")
    assert conveyor.users.sign_in_by_email("iryna@example.com").via == "sso"
    with pytest.raises(Unauthenticated, match="No active Conveyor user has the e-mail"):
        conveyor.users.sign_in_by_email("someone@example.com")
    # Without a password, the password form never lets her in.
    with pytest.raises(Unauthenticated):
        conveyor.users.sign_in("Iryna", "")
    conveyor.users.disable("Iryna", actor="test")
    with pytest.raises(Unauthenticated):
        conveyor.users.sign_in_by_email("iryna@example.com")


def test_assign_manager_assigns_to_manager_users_once_there_are_any(conveyor):
    # The conftest's managers Olena and Petro have no users; Iryna is a manager user.
    conveyor.users.add("Iryna", "manager", PASSWORD, actor="test")
    ids = [
        conveyor.create_deal("techflow", title=f"Lead {i}", fields={"phone": "+380501112233"})
        for i in range(3)
    ]
    conveyor.dispatcher.run_until_idle()
    assert {conveyor.deal(i).manager_name for i in ids} == {"Iryna"}


def test_user_management_is_in_the_audit_trail_with_who_did_it(conveyor):
    conveyor.users.add("Olena", "manager", PASSWORD, actor="cli:anna")
    conveyor.users.disable("Olena", actor="cli:anna")
    conveyor.users.set_password("Olena", "a new password!", actor="cli:anna")
    with pytest.raises(Unauthenticated):
        conveyor.users.sign_in("Olena", "guess")
    trail = [
        (e.actor, e.kind, e.subject)
        for e in reversed(conveyor.audit.entries())
        if e.kind != "version_saved"  # the sample funnels the fixture loaded
    ]
    assert trail == [
        ("cli:anna", "user_added", "Olena"),
        ("cli:anna", "user_disabled", "Olena"),
        ("cli:anna", "password_changed", "Olena"),
        ("sign-in", "sign_in_failed", "Olena"),
    ]


def test_an_unknown_user_is_named_in_the_error(conveyor):
    with pytest.raises(NotFound, match="no user named 'ghost'"):
        conveyor.users.disable("ghost", actor="test")

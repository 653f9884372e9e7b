"""A user's interface language is kept on the user (both backends): their own choice, or the owner's,
is what their next sign-in starts in; other users may not change it, and only known languages go."""

from __future__ import annotations

import pytest

from engine.errors import Forbidden, InvalidChange

PASSWORD = "correct horse battery"


def test_a_user_sets_their_own_language_and_signs_in_with_it(conveyor):
    conveyor.users.add("Olena", "manager", PASSWORD, actor="test")
    signed = conveyor.users.sign_in("Olena", PASSWORD)
    assert signed.language is None  # never chosen: the builder uses CONVEYOR_LANG
    conveyor.users.set_language("Olena", "uk", actor=signed.actor)
    assert conveyor.users.get("Olena").language == "uk"
    assert conveyor.users.sign_in("Olena", PASSWORD).language == "uk"
    assert conveyor.users.resume(signed).language == "uk"  # an open session follows it too


def test_another_manager_may_not_set_someones_language_but_the_owner_may(conveyor):
    conveyor.users.add("Olena", "manager", PASSWORD, actor="test")
    conveyor.users.add("Petro", "manager", PASSWORD, actor="test")
    conveyor.users.add("boss", "owner", PASSWORD, actor="test")
    petro = conveyor.users.sign_in("Petro", PASSWORD).actor
    with pytest.raises(Forbidden):
        conveyor.users.set_language("Olena", "en", actor=petro)
    assert conveyor.users.get("Olena").language is None
    conveyor.users.set_language("Olena", "en", actor=conveyor.users.sign_in("boss", PASSWORD).actor)
    assert conveyor.users.get("Olena").language == "en"


def test_an_unknown_language_is_refused_by_name(conveyor):
    conveyor.users.add("Olena", "manager", PASSWORD, actor="test")
    with pytest.raises(InvalidChange, match="unknown language 'pl' \\(use uk, en\\)"):
        conveyor.users.set_language("Olena", "pl", actor="test")
    assert conveyor.users.get("Olena").language is None

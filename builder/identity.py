"""Who is signed in, without anything else of the builder: the session key, the signed-in user, whether
their role may do something, and a ``Conveyor`` whose changes are made as them. ``builder.session``
(the sign-in form and the gate) re-exports these; ``builder.state`` uses them without importing it.
"""

from __future__ import annotations

import functools
from typing import Any

import streamlit as st

from engine.core.access import Actor, Permission, allowed
from engine.core.users import SignedIn

__all__ = ["KEY", "Acting", "can", "current_actor", "signed_in_user"]

#: Where the session lives in ``st.session_state`` (one browser tab's session).
KEY = "auth_session"


def signed_in_user() -> SignedIn | None:
    """The signed-in session of this browser tab, or ``None``."""
    signed = st.session_state.get(KEY)
    return signed if isinstance(signed, SignedIn) else None


def current_actor() -> Actor | None:
    """The signed-in user as the actor engine calls take, or ``None`` when nobody is signed in."""
    signed = signed_in_user()
    return signed.actor if signed is not None else None


def can(permission: Permission) -> bool:
    """May the signed-in user do ``permission``? ``False`` when nobody is signed in."""
    actor = current_actor()
    return actor is not None and allowed(actor, permission)


class Acting:
    """A ``Conveyor`` whose changes are made as one actor: each change method gets ``actor=`` filled."""

    CHANGES = frozenset(
        {
            "save_ruleset",
            "activate",
            "create_deal",
            "update_deal",
            "move_deal",
            "record_event",
            "record_activity",
            "complete_task",
            "retry_action",
        }
    )

    def __init__(self, conveyor: Any, actor: Actor):
        self._conveyor = conveyor
        self.actor = actor

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._conveyor, name)
        if name not in self.CHANGES:
            return attr

        @functools.wraps(attr)
        def as_actor(*args: Any, **kwargs: Any) -> Any:
            if "actor" in kwargs:  # a page never says who it is: the session does
                raise TypeError(f"{name}() through acting_conveyor() takes no actor")
            return attr(*args, actor=self.actor, **kwargs)

        return as_actor

"""Stored sign-in sessions: what lets the builder keep a user signed in across page reloads.

``Sessions`` (``Conveyor.sessions``) signs in through ``Users`` and stores the session under an opaque
random id (only its SHA-256 digest is kept). The builder keeps that id in a cookie signed with
itsdangerous under the server's key (``Keyring.subkey("sessions")``), so a reload or a new tab resumes
the session with ``resume_cookie``. A session is refused once it is older than ``SESSION_LIFETIME``,
unused for ``SESSION_IDLE``, signed out (``end``), or when its user was disabled, got a new password or
another role; a forged, altered or foreign cookie is refused before the database is asked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeTimedSerializer

from engine.core.access import Role
from engine.core.audit import record
from engine.core.context import Context
from engine.core.keyring import Keyring
from engine.core.users import SESSION_IDLE, SESSION_LIFETIME, SignedIn, Users
from engine.errors import ConveyorError
from storage import people_repositories as people
from storage.people_models import User, UserSession

__all__ = ["TOUCH_EVERY", "Sessions"]

SALT = "conveyor.builder-session"
#: How often a session's "last seen" is written (not on every click: idle time is kept to this much).
TOUCH_EVERY = timedelta(minutes=1)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class Sessions:
    """Sign in with a stored session, resume it from its cookie, check it on every page, end it."""

    def __init__(self, context: Context, users: Users, keyring: Keyring):
        self._context = context
        self._users = users
        self._keyring = keyring

    def sign_in(self, name: str, password: str, *, address: str = "") -> SignedIn:
        """``Users.sign_in`` (same refusals and throttling), and the session stored."""
        return self._start(self._users.sign_in(name, password, address=address))

    def sign_in_by_email(self, email: str) -> SignedIn:
        """``Users.sign_in_by_email`` (single sign-on), and the session stored."""
        return self._start(self._users.sign_in_by_email(email))

    def _start(self, signed: SignedIn) -> SignedIn:
        session_id = secrets.token_urlsafe(32)
        now = self._context.clock.now()
        with self._context.transaction() as s:
            u = people.get_user_by_name(s, signed.name)
            if u is None:  # removed in the instant since sign-in: nothing to resume
                return signed
            people.drop_sessions_before(s, now - SESSION_LIFETIME)
            people.add_session(
                s,
                digest=_digest(session_id),
                user_id=u.id,
                via=signed.via,
                signed_in_at=signed.signed_in_at,
                last_seen_at=now,
            )
        return replace(signed, session=session_id)

    # -- the cookie ------------------------------------------------------------------------------
    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._keyring.subkey("sessions"), salt=SALT)

    def cookie(self, signed: SignedIn) -> str | None:
        """The value the builder's cookie keeps for ``signed`` (its session id, signed), or ``None``
        for a session that is not stored or an installation without a server key."""
        if not signed.session:
            return None
        try:
            return self._serializer().dumps(signed.session)
        except ConveyorError:  # PostgreSQL without CONVEYOR_SECRET_KEY: the tab's session only
            return None

    def resume_cookie(self, value: str) -> SignedIn | None:
        """The session a cookie names, if its signature holds and the session is still good."""
        if not isinstance(value, str) or not value or len(value) > 500:
            return None
        try:
            session_id = self._serializer().loads(
                value, max_age=int(SESSION_LIFETIME.total_seconds())
            )
        except (BadData, ConveyorError):
            return None
        if not isinstance(session_id, str):
            return None
        return self._check(session_id, None)

    # -- every page ------------------------------------------------------------------------------
    def check(self, signed: SignedIn) -> SignedIn | None:
        """The session again, seen now, if still good (see the module); else ``None``: sign in again.
        A session that is not stored (made by ``Users.sign_in`` directly) is checked by ``Users.resume``."""
        if not signed.session:
            return self._users.resume(signed)
        return self._check(signed.session, signed)

    def _check(self, session_id: str, signed: SignedIn | None) -> SignedIn | None:
        now = self._context.clock.now()
        with self._context.transaction() as s:
            row = people.get_session(s, _digest(session_id))
            u = people.get_user(s, row.user_id) if row is not None else None
            if row is None or u is None or not _alive(row, u, now):
                return None
            if signed is not None and (signed.name != u.name or signed.role is not Role(u.role)):
                return None
            if now - row.last_seen_at >= TOUCH_EVERY:
                row.last_seen_at = now
            return SignedIn(
                u.name,
                Role(u.role),
                u.manager_id,
                bool(u.sees_team),
                row.signed_in_at,
                now,
                row.via,
                u.language,
                session=session_id,
            )

    def end(self, signed: SignedIn) -> None:
        """Sign-out: the session is over for good (its cookie, anywhere, resumes nothing)."""
        now = self._context.clock.now()
        with self._context.transaction() as s:
            row = people.get_session(s, _digest(signed.session)) if signed.session else None
            if row is not None and row.ended_at is None:
                row.ended_at = now
            record(s, signed.actor, "signed_out", now, subject=signed.name)


def _alive(row: UserSession, u: User, now: datetime) -> bool:
    return (
        row.ended_at is None
        and bool(u.active)
        and row.signed_in_at >= u.sessions_valid_from
        and now < row.signed_in_at + SESSION_LIFETIME
        and now < row.last_seen_at + SESSION_IDLE
    )

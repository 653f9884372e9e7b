"""Tables of the people who use Conveyor: local users, their sign-in sessions, sign-in throttling and
the audit trail. Changed only through Alembic migrations (0007, 0009, 0011).

Passwords are stored as argon2 hashes only (engine.core.users); an address is stored as a digest.
Audit entries are only ever inserted: nothing in the engine updates or deletes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import ID, Base, UTCDateTime


class User(Base):
    """A person who signs in to the builder: a role, an argon2 hash, and (for a manager) their managers row."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(300), default="")
    #: For single sign-on: the e-mail the identity provider vouches for (lower case).
    email: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: A manager user's row in ``managers`` (what deals and tasks are assigned to).
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("managers.id"), nullable=True, unique=True
    )
    #: A manager who sees the whole team's deals and tasks, not only their own.
    sees_team: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Sessions started before this instant are over (a new password, a disabled account).
    sessions_valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The interface language the user chose (``uk``, ``en``); none: ``CONVEYOR_LANG``'s.
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)


class UserSession(Base):
    """A signed-in session, found by its opaque id (stored as a SHA-256 digest only: the builder's cookie
    carries the id itself). Over when ``ended_at`` is set (sign-out), or by the rules ``engine.core.sessions``
    checks (lifetime, idle time, the user's ``sessions_valid_from``)."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    via: Mapped[str] = mapped_column(String(20), default="password")
    signed_in_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SignInFailures(Base):
    """Failed sign-ins in a row of one account (``account:<name>``) or one address (``address:<digest>``)."""

    __tablename__ = "signin_failures"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who changed what: a user, an API key, the engine (with its rule) or the system."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    deal_id: Mapped[int | None] = mapped_column(ID, nullable=True, index=True)
    #: What the change was about, in words (a funnel and version, a user's name, a task's title).
    subject: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

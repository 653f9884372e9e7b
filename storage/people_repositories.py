"""Queries and writes for the people tables (``storage.people_models``). All take an open ``Session``.

Never commit: the engine decides transaction boundaries. The audit trail is append-only here: there is
an insert and reads, and no update or delete.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from storage.people_models import AuditEntry, SignInFailures, User, UserSession
from storage.repositories.history import insert_audit


# -- users ---------------------------------------------------------------------------------------
def add_user(session: Session, **values: Any) -> User:
    row = User(**values)
    session.add(row)
    session.flush()
    return row


def get_user_by_name(session: Session, name: str) -> User | None:
    """Names are matched without regard to case: "olena" signs in as "Olena"."""
    return session.scalar(select(User).where(func.lower(User.name) == name.lower()))


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.lower()))


def get_user_by_manager(session: Session, manager_id: int) -> User | None:
    return session.scalar(select(User).where(User.manager_id == manager_id))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def any_manager_users(session: Session) -> bool:
    count = session.scalar(select(func.count()).select_from(User).where(User.role == "manager"))
    return bool(count)


# -- sign-in failures ----------------------------------------------------------------------------
def get_failures(session: Session, key: str) -> SignInFailures | None:
    return session.scalar(select(SignInFailures).where(SignInFailures.key == key))


def count_failure(session: Session, key: str, now: datetime) -> SignInFailures:
    row = get_failures(session, key)
    if row is None:
        row = SignInFailures(key=key, failures=0, last_failed_at=now)
        session.add(row)
    row.failures += 1
    row.last_failed_at = now
    session.flush()
    return row


def clear_failures(session: Session, key: str | None = None) -> int:
    """Forget the failures of one key, or (``None``) of every account and address."""
    q = delete(SignInFailures)
    if key is not None:
        q = q.where(SignInFailures.key == key)
    return session.execute(q).rowcount or 0  # type: ignore[attr-defined]


# -- the audit trail -----------------------------------------------------------------------------
def add_audit(session: Session, **values: Any) -> None:
    """One entry of the trail, written at once (every column but the id; a Core INSERT on the driver's
    cursor, ``storage.statements``)."""
    insert_audit(session, values)


def list_audit(
    session: Session,
    *,
    actor: str | None = None,
    deal_id: int | None = None,
    kind: str | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    q = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if actor is not None:
        q = q.where(AuditEntry.actor == actor)
    if deal_id is not None:
        q = q.where(AuditEntry.deal_id == deal_id)
    if kind is not None:
        q = q.where(AuditEntry.kind == kind)
    if limit is not None:
        q = q.limit(limit)
    return list(session.scalars(q))


def audit_actors(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEntry.actor).distinct().order_by(AuditEntry.actor)))


def audit_kinds(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEntry.kind).distinct().order_by(AuditEntry.kind)))


# -- sessions ------------------------------------------------------------------------------------
def add_session(session: Session, **values: Any) -> UserSession:
    row = UserSession(**values)
    session.add(row)
    session.flush()
    return row


def get_session(session: Session, digest: str) -> UserSession | None:
    return session.scalar(select(UserSession).where(UserSession.digest == digest))


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def drop_sessions_before(session: Session, signed_in_before: datetime) -> int:
    """Forget sessions that began before ``signed_in_before`` (past their lifetime: nothing resumes them)."""
    q = delete(UserSession).where(UserSession.signed_in_at < signed_in_before)
    return session.execute(q).rowcount or 0  # type: ignore[attr-defined]

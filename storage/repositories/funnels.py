"""Funnels and their rule-set versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Funnel, RuleSetVersion


def get_funnel(session: Session, funnel_id: str) -> Funnel | None:
    return session.get(Funnel, funnel_id)


def list_funnels(session: Session) -> list[Funnel]:
    return list(session.scalars(select(Funnel).order_by(Funnel.id)))


def ensure_funnel(session: Session, funnel_id: str, name: str, now: datetime) -> Funnel:
    funnel = session.get(Funnel, funnel_id)
    if funnel is None:
        funnel = Funnel(id=funnel_id, name=name, created_at=now)
        session.add(funnel)
        session.flush()
    else:
        funnel.name = name
    return funnel


def add_version(
    session: Session,
    funnel_id: str,
    document: str,
    fingerprint: str,
    comment: str,
    author: str,
    now: datetime,
) -> RuleSetVersion:
    last = session.scalar(
        select(func.max(RuleSetVersion.version)).where(RuleSetVersion.funnel_id == funnel_id)
    )
    row = RuleSetVersion(
        funnel_id=funnel_id,
        version=(last or 0) + 1,
        document=document,
        fingerprint=fingerprint,
        comment=comment,
        author=author,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def get_version(session: Session, version_id: int) -> RuleSetVersion | None:
    return session.get(RuleSetVersion, version_id)


def get_version_by_number(session: Session, funnel_id: str, version: int) -> RuleSetVersion | None:
    return session.scalar(
        select(RuleSetVersion).where(
            RuleSetVersion.funnel_id == funnel_id, RuleSetVersion.version == version
        )
    )


def list_versions(session: Session, funnel_id: str) -> list[RuleSetVersion]:
    return list(
        session.scalars(
            select(RuleSetVersion)
            .where(RuleSetVersion.funnel_id == funnel_id)
            .order_by(RuleSetVersion.version.desc())
        )
    )


def version_numbers(session: Session) -> dict[int, tuple[str, int]]:
    """Rule-set version id → (funnel, version number), to show which version a firing came from."""
    rows = session.execute(
        select(RuleSetVersion.id, RuleSetVersion.funnel_id, RuleSetVersion.version)
    )
    return {vid: (funnel, number) for vid, funnel, number in rows}

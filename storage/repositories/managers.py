"""Managers and the round robin that assigns them deals."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Deal, Manager
from storage.people_models import User


def add_manager(session: Session, name: str, phone: str = "") -> Manager:
    row = Manager(name=name, phone=phone, active=True)
    session.add(row)
    session.flush()
    return row


def get_manager_by_name(session: Session, name: str) -> Manager | None:
    return session.scalar(select(Manager).where(Manager.name == name))


def list_managers(session: Session, active_only: bool = False) -> list[Manager]:
    q = select(Manager).order_by(Manager.id)
    if active_only:
        q = q.where(Manager.active.is_(True))
    return list(session.scalars(q))


def manager_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Manager.id, Manager.name)).all())


def open_deal_counts(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Deal.manager_id, func.count())
        .where(Deal.closed.is_(False), Deal.manager_id.is_not(None))
        .group_by(Deal.manager_id)
    ).all()
    return {m: c for m, c in rows if m is not None}


def next_manager_round_robin(session: Session) -> Manager | None:
    """Round robin over active managers (least recently assigned first), least-loaded on ties.

    Once the database has manager users, only managers who are an active manager user take deals
    (a managers row left from before sign-in, or an owner's, is not assigned to).
    """
    managers = list_managers(session, active_only=True)
    user_rows = session.execute(
        select(User.manager_id, User.active).where(
            User.role == "manager", User.manager_id.is_not(None)
        )
    ).all()
    if user_rows:
        signing_in = {m for m, active in user_rows if active}
        managers = [m for m in managers if m.id in signing_in]
    if not managers:
        return None
    load = open_deal_counts(session)
    return min(managers, key=lambda m: (m.assign_seq, load.get(m.id, 0), m.id))


def next_assign_seq(session: Session) -> int:
    return (session.scalar(select(func.max(Manager.assign_seq))) or 0) + 1

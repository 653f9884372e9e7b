"""Queries and writes for the doors' tables (``storage.door_models``). All take an open ``Session``.

Never commit: the engine decides transaction boundaries. The unique keys decide races: a second
insert of one idempotency key, one hook event id or one rate window is refused by the database
(``claim_*`` return whether this call won).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.door_models import (
    ApiKey,
    Form,
    Hook,
    HookCall,
    HookEvent,
    IdempotencyRecord,
    RateCounter,
)


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# -- API keys ------------------------------------------------------------------------------------
def add_api_key(session: Session, **values: Any) -> ApiKey:
    row = ApiKey(**values)
    session.add(row)
    session.flush()
    return row


def get_api_key_by_name(session: Session, name: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.name == name))


def get_api_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.name)))


def touch_api_key(session: Session, key_id: int, now: datetime) -> None:
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))


# -- idempotency ---------------------------------------------------------------------------------
def claim_idempotency_key(
    session: Session, scope: str, key: str, request_hash: str, now: datetime, lease_until: datetime
) -> bool:
    """Insert a pending record for (scope, key), leased until ``lease_until``; False if one exists."""
    stmt = (
        _insert(session)(IdempotencyRecord)
        .values(
            scope=scope,
            key=key,
            request_hash=request_hash,
            status="pending",
            created_at=now,
            lease_until=lease_until,
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(IdempotencyRecord.id)
    )
    return session.execute(stmt).scalar() is not None


def reclaim_idempotency_key(
    session: Session,
    scope: str,
    key: str,
    request_hash: str,
    now: datetime,
    lease_until: datetime,
    unleased_before: datetime,
) -> bool:
    """Take over a pending claim of the same request whose lease lapsed (its request died); one
    conditional update, so of several takers one wins. ``unleased_before``: a claim without a lease
    (written before leases) counts as lapsed if created before this."""
    lapsed = or_(
        IdempotencyRecord.lease_until < now,
        and_(
            IdempotencyRecord.lease_until.is_(None),
            IdempotencyRecord.created_at < unleased_before,
        ),
    )
    result = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
            IdempotencyRecord.request_hash == request_hash,
            IdempotencyRecord.status == "pending",
            lapsed,
        )
        .values(lease_until=lease_until, created_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def renew_idempotency_key(session: Session, scope: str, key: str, lease_until: datetime) -> None:
    session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
            IdempotencyRecord.status == "pending",
        )
        .values(lease_until=lease_until)
    )


def get_idempotency_record(session: Session, scope: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
        )
    )


def complete_idempotency_key(
    session: Session, scope: str, key: str, status: int, body: str, now: datetime
) -> None:
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
        .values(status="done", response_status=status, response_body=body, completed_at=now)
    )


def release_idempotency_key(session: Session, scope: str, key: str) -> None:
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
            IdempotencyRecord.status == "pending",
        )
    )


def purge_idempotency_keys(session: Session, before: datetime) -> None:
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < before))


# -- hooks ---------------------------------------------------------------------------------------
def add_hook(session: Session, **values: Any) -> Hook:
    row = Hook(**values)
    session.add(row)
    session.flush()
    return row


def get_hook(session: Session, name: str) -> Hook | None:
    return session.scalar(select(Hook).where(Hook.name == name))


def list_hooks(session: Session) -> list[Hook]:
    return list(session.scalars(select(Hook).order_by(Hook.name)))


def delete_hook(session: Session, hook_id: int) -> None:
    session.execute(delete(Hook).where(Hook.id == hook_id))


def claim_hook_event(session: Session, hook_id: int, event_id: str, now: datetime) -> bool:
    """Insert (hook, event id); False if it was seen before. Called inside the event's own
    transaction, so the claim commits with the event or not at all."""
    stmt = (
        _insert(session)(HookEvent)
        .values(hook_id=hook_id, event_id=event_id, status="done", received_at=now)
        .on_conflict_do_nothing(index_elements=["hook_id", "event_id"])
        .returning(HookEvent.id)
    )
    return session.execute(stmt).scalar() is not None


def add_hook_call(session: Session, **values: Any) -> None:
    session.add(HookCall(**values))


def list_hook_calls(
    session: Session, *, hook: str | None = None, limit: int = 100
) -> list[HookCall]:
    q = select(HookCall).order_by(HookCall.at.desc(), HookCall.id.desc()).limit(limit)
    if hook:
        q = q.where(HookCall.hook == hook)
    return list(session.scalars(q))


# -- forms and rate limits -----------------------------------------------------------------------
def add_form(session: Session, **values: Any) -> Form:
    row = Form(**values)
    session.add(row)
    session.flush()
    return row


def get_form_by_token(session: Session, token: str) -> Form | None:
    return session.scalar(select(Form).where(Form.token == token))


def list_forms(session: Session) -> list[Form]:
    return list(session.scalars(select(Form).order_by(Form.id)))


def count_request(session: Session, bucket: str, window_start: datetime) -> int:
    """Add one request to (bucket, window) and return the window's count (one statement: race-free)."""
    insert = _insert(session)(RateCounter).values(bucket=bucket, window_start=window_start, count=1)
    stmt = insert.on_conflict_do_update(
        index_elements=["bucket", "window_start"], set_={"count": RateCounter.count + 1}
    ).returning(RateCounter.count)
    return int(session.execute(stmt).scalar_one())


def purge_rate_counters(session: Session, before: datetime) -> None:
    session.execute(delete(RateCounter).where(RateCounter.window_start < before))

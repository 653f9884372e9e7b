"""Tables of the HTTP doors (engine.api): API keys, idempotency records, signed hooks and their call
log, website forms and rate-limit counters. Changed only through Alembic migrations (0004, 0005).

Nothing secret is stored in clear: API keys as a SHA-256 digest, hook secrets encrypted by the engine
(storage only keeps the ciphertext), client addresses as a digest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import ID, Base, UTCDateTime


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The key's first characters, to tell keys apart in a list; never enough to use it.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IdempotencyRecord(Base):
    """One ``Idempotency-Key`` of one caller: the request's digest and, once done, the first answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(120))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))  # pending | done
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: Until when a pending claim is its request's (renewed while it runs); lapsed: the request died.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Hook(Base):
    """A signed inbound webhook: its secret (and the previous one during a rotation's grace period)."""

    __tablename__ = "hooks"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    secret_enc: Mapped[str] = mapped_column(Text)
    previous_secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: canonical field → JSON pointer into a foreign payload (``{"deal": "/order_id"}``); empty: canonical body.
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class HookEvent(Base):
    """An event id a hook accepted: the unique key makes a replayed delivery fire nothing again."""

    __tablename__ = "hook_events"
    __table_args__ = (UniqueConstraint("hook_id", "event_id", name="uq_hook_event"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    hook_id: Mapped[int] = mapped_column(ID)
    event_id: Mapped[str] = mapped_column(String(200))
    #: "done": claimed in the event's own transaction (rows of an older version may say "pending").
    status: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HookCall(Base):
    """Every call to ``POST /hooks/{name}``, whatever its outcome (the builder lists them)."""

    __tablename__ = "hook_calls"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    hook: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(Text, default="")


class Form(Base):
    """A website lead form of one funnel: its public token, the fields it may set, who may post it."""

    __tablename__ = "forms"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    funnel_id: Mapped[str] = mapped_column(String(64), index=True)
    fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    origins: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rate_per_hour: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RateCounter(Base):
    """Requests of one bucket (a form and a client address digest) in one window."""

    __tablename__ = "rate_limits"
    __table_args__ = (
        UniqueConstraint("bucket", "window_start", name="uq_rate_bucket_window"),
        Index("ix_rate_limits_window", "window_start"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)

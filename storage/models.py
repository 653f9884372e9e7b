"""The database schema (SQLAlchemy 2.x declarative models). Changed only through Alembic migrations.

Times are stored as naive UTC and come back as aware UTC (``UTCDateTime``). Rule-set documents are
stored as JSON text, untouched: storage does not know what a rule is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} reached storage; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


ID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Funnel(Base):
    __tablename__ = "funnels"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    active_version_id: Mapped[int | None] = mapped_column(ID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RuleSetVersion(Base):
    __tablename__ = "ruleset_versions"
    __table_args__ = (UniqueConstraint("funnel_id", "version", name="uq_ruleset_version"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    funnel_id: Mapped[str] = mapped_column(ForeignKey("funnels.id"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Manager(Base):
    __tablename__ = "managers"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    phone: Mapped[str] = mapped_column(String(50), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    assign_seq: Mapped[int] = mapped_column(Integer, default=0)
    #: Where the manager is told of notifications, urgent tasks and the daily digest: a configured
    #: channel (``telegram``, ``email``, ``sms``) and the address on it; none → only recorded.
    notify_channel: Mapped[str | None] = mapped_column(String(20), nullable=True)
    notify_address: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_funnel_stage", "funnel_id", "stage"),
        # Partial (migration 0013): every query by manager names one (or asks IS NOT NULL), and a
        # deal without a manager yet (each imported lead until assign_manager) adds no entry.
        Index(
            "ix_deals_manager_id",
            "manager_id",
            sqlite_where=text("manager_id IS NOT NULL"),
            postgresql_where=text("manager_id IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    funnel_id: Mapped[str] = mapped_column(ForeignKey("funnels.id"))
    title: Mapped[str] = mapped_column(String(300), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    amount: Mapped[float | None] = mapped_column(Float, nullable=True)
    stage: Mapped[str] = mapped_column(String(64))
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    stage_visit: Mapped[int] = mapped_column(Integer, default=1)
    stage_entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activity_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("managers.id"), nullable=True)
    # The latest occurrence of each declared event, {name: {"at": ISO instant, "visit": n}}, kept
    # with the deal_signals rows in the same transaction so evaluation reads it with the row.
    signals: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    invoice_number: Mapped[str | None] = mapped_column(String(50), nullable=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parent_deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the deal's time conditions may next turn true (engine.timers); NULL: nothing to wait for.
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class DealSignal(Base):
    """One occurrence of a funnel's declared event on a deal (a proposal opened, a payment): name, when, data."""

    __tablename__ = "deal_signals"
    __table_args__ = (Index("ix_deal_signals_deal_name_at", "deal_id", "name", "at"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"))
    name: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    stage_visit: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DealEvent(Base):
    """History of a deal: every change, who made it, and what it was."""

    __tablename__ = "deal_events"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(50))
    actor: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Firing(Base):
    """One rule fired for one deal and one occurrence: the unique key is the exactly-once guarantee."""

    __tablename__ = "firings"
    __table_args__ = (
        UniqueConstraint("deal_id", "rule_id", "occurrence", name="uq_firing_occurrence"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    # No index of its own: uq_firing_occurrence leads with it (one random page less per firing).
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"))
    funnel_id: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[str] = mapped_column(String(100))
    rule_name: Mapped[str] = mapped_column(String(300), default="")
    occurrence: Mapped[str] = mapped_column(String(100))
    ruleset_version_id: Mapped[int] = mapped_column(ForeignKey("ruleset_versions.id"))
    trigger: Mapped[str] = mapped_column(String(50))
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    chain: Mapped[list[Any]] = mapped_column(JSON, default=list)


class OutboxAction(Base):
    """An action waiting to be carried out, being carried out, or done/failed/dead."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        UniqueConstraint("firing_id", "seq", name="uq_outbox_firing_seq"),
        # Partial (migration 0013): only messages to managers have one; a rule's actions (two per
        # new lead) add no entry.
        Index(
            "ix_outbox_manager_id",
            "manager_id",
            sqlite_where=text("manager_id IS NOT NULL"),
            postgresql_where=text("manager_id IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    #: None for a message to a manager (independent of any rule's later actions; a digest has no deal).
    #: No index of its own: uq_outbox_firing_seq leads with it.
    firing_id: Mapped[int | None] = mapped_column(ForeignKey("firings.id"), nullable=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"), index=True, nullable=True)
    #: The manager a message to a manager is for (``notify_manager``, an urgent task, the digest).
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("managers.id"), nullable=True)
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kind: Mapped[str] = mapped_column(String(20))  # internal | message
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Task(Base):
    """A task or notification for a manager."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("managers.id"), nullable=True, index=True
    )
    outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id"), nullable=True, unique=True
    )
    kind: Mapped[str] = mapped_column(String(20))  # task | notification
    title: Mapped[str] = mapped_column(Text)
    #: The title in each language the rule wrote it in ({"uk": …, "en": …}); NULL: one text only.
    titles: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    priority: Mapped[str] = mapped_column(String(20), default="normal")
    status: Mapped[str] = mapped_column(
        String(20), default="open", index=True
    )  # open|done|cancelled
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The stage visit whose rule created the task; NULL: the task outlives stage moves. Leaving that
    # visit closes the task as "cancelled", with ``closed_reason`` "moved_to:<stage id>".
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stage_visit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    closed_reason: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Message(Base):
    """A message to a client or a manager, recorded by the dispatcher around the provider call."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    #: None for a message to a manager (its outbox row keeps the deal): the deal's are to its client.
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"), index=True, nullable=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(20))
    to: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(50))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))  # sending | sent | failed
    provider_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(50), unique=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id"), nullable=True, unique=True
    )
    amount: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EngineHeartbeat(Base):
    """What each engine process did last: the operator's health view reads this."""

    __tablename__ = "engine_heartbeats"
    engine_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_tick_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_tick_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_tick_summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

"""Request and response bodies of the HTTP API (pydantic; unknown request keys are refused)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.errors import InvalidChange

__all__ = [
    "ActionOut",
    "ActivityIn",
    "BatchDeal",
    "BatchOut",
    "BatchProblem",
    "DealCreate",
    "DealOut",
    "DealPatch",
    "DealsBatch",
    "EventIn",
    "FiringOut",
    "FunnelOut",
    "MoveIn",
    "Page",
    "TaskOut",
    "VersionOut",
    "decode_cursor",
    "encode_cursor",
]

MAX_CURSOR = 2**62


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DealCreate(_In):
    funnel: str = Field(max_length=200)
    key: str | None = Field(
        None, max_length=200, description="Your own key for the deal; default D-<number>."
    )
    title: str = ""
    phone: str | None = None
    email: str | None = None
    amount: float | None = None
    stage: str | None = Field(
        None, max_length=200, description="Default: the funnel's initial stage."
    )
    manager: str | None = Field(None, max_length=200)
    fields: dict[str, Any] = Field(default_factory=dict, description="Custom fields by name.")


class BatchDeal(_In):
    """One deal of a batch: ``DealCreate`` without the funnel (the batch names it once)."""

    key: str | None = Field(
        None, max_length=200, description="Your own key; a deal with this key already is skipped."
    )
    title: str = ""
    phone: str | None = None
    email: str | None = None
    amount: float | None = None
    stage: str | None = Field(None, max_length=200)
    manager: str | None = Field(None, max_length=200)
    fields: dict[str, Any] = Field(default_factory=dict)


class DealsBatch(_In):
    funnel: str = Field(max_length=200)
    deals: list[BatchDeal] = Field(max_length=1000, description="At most 1,000 deals.")
    dry_run: bool = Field(False, description="Check every deal and report; write nothing.")
    strict: bool = Field(False, description="Import nothing if any deal is bad (422).")


class BatchProblem(BaseModel):
    path: str = Field(description="deals[<index>].<field>")
    message: str


class BatchOut(BaseModel):
    import_id: str
    dry_run: bool
    imported: int = Field(description="Deals written (a dry run: that would be written).")
    skipped: int = Field(description="Deals whose key exists already: left alone.")
    keys: list[str] = Field(description="The keys of the deals written, in order.")
    errors: list[BatchProblem] = Field(description="The deals not imported and why.")


class DealPatch(_In):
    fields: dict[str, Any] | None = Field(
        None, description="Built-in (title, phone, email, amount) and custom fields to set."
    )
    manager: str | None = Field(
        None,
        max_length=200,
        description="Give the deal to this active manager (owner keys only); its open tasks follow.",
    )

    @model_validator(mode="after")
    def _one_change(self) -> DealPatch:
        # Two changes would be two transactions: a refused second one would leave the first behind.
        if (self.fields is None) == (self.manager is None):
            raise ValueError("send either fields or manager (one change per request)")
        return self


class MoveIn(_In):
    stage: str = Field(max_length=200)


class EventIn(_In):
    name: str = Field(
        max_length=200, description="An event the deal's funnel declares (e.g. payment_received)."
    )
    at: datetime | None = Field(
        None, description="When it happened (with a time zone); default now."
    )
    data: dict[str, Any] | None = Field(
        None, description="A flat object the event carries (e.g. amount, url)."
    )


class ActivityIn(_In):
    kind: str = Field("call", max_length=200)
    note: str = ""


class TaskOut(BaseModel):
    id: int
    deal: str
    kind: str
    title: str
    priority: str
    status: str
    manager: str | None
    due_at: datetime | None
    created_at: datetime
    done_at: datetime | None
    closed_reason: str | None = None


class FiringOut(BaseModel):
    rule_id: str
    rule_name: str
    fired_at: datetime
    trigger: str
    values: dict[str, Any]


class DealOut(BaseModel):
    key: str
    funnel: str
    stage: str
    stage_name: str
    closed: bool
    title: str
    phone: str
    email: str
    amount: float | None
    manager: str | None
    fields: dict[str, Any]
    events: dict[str, Any] = Field(
        description="Declared events that happened: {name: {at, visit}}."
    )
    invoice_number: str | None
    created_at: datetime
    updated_at: datetime
    open_tasks: list[TaskOut]
    firings: list[FiringOut]


class ActionOut(BaseModel):
    id: int
    deal: str
    rule_id: str
    action: str
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    #: The manager a message to a manager is for; null for a rule's action on a deal.
    manager: str | None = None


class FunnelOut(BaseModel):
    id: str
    name: str
    active_version: int | None


class VersionOut(BaseModel):
    funnel: str
    version: int
    comment: str
    author: str
    created_at: datetime
    active: bool


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last one."
    )


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        value = int(raw)
    except (binascii.Error, ValueError, UnicodeError):
        raise InvalidChange(f"cursor {cursor[:40]!r} is not one this API returned") from None
    if not 0 <= value < MAX_CURSOR:
        raise InvalidChange(f"cursor {cursor[:40]!r} is not one this API returned")
    return value

"""``POST /hooks/{name}``: signed inbound webhooks (a bank's payment, a provider's event).

Verified, de-duplicated and logged by ``engine.core.hooks``; the event is recorded with
``record_event`` like any other, in one transaction with the claim of its id, and what it sets in
motion (a stage move) is applied at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from starlette.concurrency import run_in_threadpool

from engine.api.auth import conveyor_of
from engine.api.writer import writer_of
from engine.core.conveyor import Conveyor
from engine.core.evaluation import internal_queued
from engine.core.hooks import Delivery

router = APIRouter(tags=["hooks"])


@router.post(
    "/hooks/{name}",
    summary="A signed event from outside (Conveyor-Signature: t=…,v1=…)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "deal": {"type": "string"},
                            "event": {"type": "string"},
                            "data": {"type": "object"},
                        },
                    }
                }
            },
        }
    },
)
async def receive(
    name: Annotated[str, Path(max_length=100)],
    request: Request,
    c: Annotated[Conveyor, Depends(conveyor_of)],
    conveyor_signature: Annotated[str | None, Header(max_length=1000)] = None,
) -> dict[str, Any]:
    body = await request.body()
    writer = writer_of(request)
    if writer is None:  # no group commit (PostgreSQL): the thread pool, calls in parallel
        delivery = await run_in_threadpool(_receive, c, name, body, conveyor_signature)
    else:  # grouped with the calls arriving beside it; answered once its group is durable
        delivery = await writer.run(
            lambda: c.hooks.receive(name, body, conveyor_signature),
            _same,
            applies=lambda d: not d.duplicate,
        )
    return {"id": delivery.event_id, "duplicate": delivery.duplicate}


def _same(delivery: Delivery) -> Delivery:
    return delivery


def _receive(c: Conveyor, name: str, body: bytes, signature: str | None) -> Delivery:
    """The call and the internal actions it queued (none looked for when it queued none), in one
    trip through the thread pool."""
    mark = internal_queued()
    delivery = c.hooks.receive(name, body, signature)
    if not delivery.duplicate and internal_queued() != mark:
        c.apply_queued()
    return delivery

"""``/api/v1/status``: what ``conveyor status`` shows (engines, last tick, the outbox by state)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from engine.api.auth import conveyor_of, current_actor
from engine.core.access import Actor
from engine.core.conveyor import Conveyor

router = APIRouter(prefix="/api/v1", tags=["status"])


@router.get("/status", summary="Health of the engine service")
def status(
    actor: Annotated[Actor, Depends(current_actor)], c: Annotated[Conveyor, Depends(conveyor_of)]
) -> dict[str, Any]:
    from engine.service.status import health

    c.listings.may_read_status(actor=actor)
    h = health(c)
    return {
        "healthy": not h.problems(),
        "problems": h.problems(),
        "now": h.now,
        "actions": h.counts,
        "oldest_pending_at": h.oldest_pending_at,
        "oldest_ready_at": h.oldest_ready_at,
        "last_tick_at": h.last_tick_at,
        "last_tick_seconds": h.last_tick_seconds,
        "engines": [
            {
                "id": e.engine_id,
                "host": e.host,
                "pid": e.pid,
                "state": e.state,
                "seen_at": e.seen_at,
                "last_tick_at": e.last_tick_at,
            }
            for e in h.engines
        ],
    }

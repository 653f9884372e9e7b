"""Declared events arrive at ``POST /api/v1/deals/{key}/events`` (``engine.api.deals``), signed ones
at ``/hooks/{name}`` (``engine.api.hooks``) and a client's opening of a proposal at ``/t/{token}``
(``engine.api.tracking``); this module lists what a funnel declares."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from engine.api.auth import conveyor_of, current_actor
from engine.core.access import Actor
from engine.core.conveyor import Conveyor

router = APIRouter(prefix="/api/v1/funnels", tags=["events"])


@router.get(
    "/{funnel}/events",
    summary="The events a funnel declares (what POST /deals/{key}/events accepts)",
)
def declared_events(
    funnel: Annotated[str, Path(max_length=200)],
    actor: Annotated[Actor, Depends(current_actor)],
    c: Annotated[Conveyor, Depends(conveyor_of)],
) -> list[dict[str, Any]]:
    return c.listings.declared_events(funnel, actor=actor)

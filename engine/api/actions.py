"""``/api/v1/actions``: the outbox, filtered and paged; retrying a failed or dead action."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from engine.api.auth import conveyor_of, current_actor
from engine.api.models import MAX_CURSOR, ActionOut, Page, decode_cursor, encode_cursor
from engine.core.access import Actor
from engine.core.conveyor import Conveyor
from engine.core.listings import MAX_PAGE

router = APIRouter(prefix="/api/v1/actions", tags=["actions"])
Status = Literal["pending", "sending", "failed", "dead", "done"]


@router.get("", response_model=Page[ActionOut], summary="Actions, by id (cursor pages)")
def list_actions(
    actor: Annotated[Actor, Depends(current_actor)],
    c: Annotated[Conveyor, Depends(conveyor_of)],
    status: Annotated[list[Status] | None, Query()] = None,
    deal: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Page[ActionOut]:
    rows = c.listings.actions(
        actor=actor,
        after=decode_cursor(cursor),
        limit=limit,
        statuses=list(status or []),
        deal=deal,
    )
    return Page[ActionOut](
        items=[ActionOut.model_validate(asdict(r)) for r in rows],
        next_cursor=encode_cursor(rows[-1].id) if len(rows) == limit else None,
    )


@router.post(
    "/{action_id}/retry",
    response_model=ActionOut,
    summary="Queue a failed or dead action again now",
)
def retry_action(
    action_id: Annotated[int, Path(ge=1, lt=MAX_CURSOR)],
    actor: Annotated[Actor, Depends(current_actor)],
    c: Annotated[Conveyor, Depends(conveyor_of)],
) -> ActionOut:
    c.retry_action(action_id, actor=actor)
    return ActionOut.model_validate(asdict(c.listings.action(action_id, actor=actor)))

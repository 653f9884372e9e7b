"""``/api/v1/tasks``: managers' tasks, filtered and paged; completing one."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from engine.api.auth import conveyor_of, current_actor
from engine.api.models import MAX_CURSOR, Page, TaskOut, decode_cursor, encode_cursor
from engine.core.access import Actor
from engine.core.conveyor import Conveyor
from engine.core.listings import MAX_PAGE

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.get("", response_model=Page[TaskOut], summary="Tasks, by id (cursor pages)")
def list_tasks(
    actor: Annotated[Actor, Depends(current_actor)],
    c: Annotated[Conveyor, Depends(conveyor_of)],
    manager: Annotated[str | None, Query(max_length=200)] = None,
    due_before: datetime | None = None,
    status: Annotated[str | None, Query(pattern="^(open|done|cancelled)$")] = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Page[TaskOut]:
    if due_before is not None and due_before.tzinfo is None:
        due_before = due_before.replace(tzinfo=UTC)  # a time without a zone is read as UTC
    rows = c.listings.tasks(
        actor=actor,
        after=decode_cursor(cursor),
        limit=limit,
        status=status,
        manager=manager,
        due_before=due_before,
    )
    return Page[TaskOut](
        items=[TaskOut.model_validate(asdict(r)) for r in rows],
        next_cursor=encode_cursor(rows[-1].id) if len(rows) == limit else None,
    )


@router.post(
    "/{task_id}/complete",
    response_model=TaskOut,
    summary="Mark a task done (the manager's activity)",
)
def complete_task(
    task_id: Annotated[int, Path(ge=1, lt=MAX_CURSOR)],
    actor: Annotated[Actor, Depends(current_actor)],
    c: Annotated[Conveyor, Depends(conveyor_of)],
) -> TaskOut:
    c.complete_task(task_id, actor=actor)
    c.apply_queued()
    return TaskOut.model_validate(asdict(c.listings.task(task_id, actor=actor)))

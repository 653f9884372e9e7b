"""``/api/v1/deals``: create, read, update, move; a deal's declared events and activities."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from engine.api.auth import conveyor_of, current_actor
from engine.api.models import (
    ActivityIn,
    BatchOut,
    BatchProblem,
    DealCreate,
    DealOut,
    DealPatch,
    DealsBatch,
    EventIn,
    MoveIn,
)
from engine.api.problems import problem
from engine.api.writer import writer_of
from engine.core.access import Actor, Permission
from engine.core.conveyor import Conveyor
from engine.core.evaluation import internal_queued
from engine.i18n import _

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])
Key = Annotated[str, Path(max_length=200, description="The deal's key, e.g. D-12")]
ActorDep = Annotated[Actor, Depends(current_actor)]
ConveyorDep = Annotated[Conveyor, Depends(conveyor_of)]


def _apply_if_queued(c: Conveyor, mark: int) -> None:
    """Apply the internal actions the request's change queued (its answer shows them), and look for
    none when it queued none; actions queued elsewhere (a tick, a failed retry) are the service's."""
    if internal_queued() != mark:
        c.apply_queued()


def _view(c: Conveyor, key: str, actor: Actor) -> DealOut:
    return DealOut.model_validate(asdict(c.listings.deal(key, actor=actor)))


@router.post("", status_code=201, response_model=DealOut, summary="Create a deal")
def create_deal(body: DealCreate, actor: ActorDep, c: ConveyorDep) -> DealOut:
    fields = dict(body.fields)
    for name in ("phone", "email", "amount"):
        value = getattr(body, name)
        if value is not None:
            fields[name] = value
    deal_id = c.create_deal(
        body.funnel,
        key=body.key,
        title=body.title,
        stage=body.stage,
        fields=fields,
        manager=body.manager,
        actor=actor,
    )
    c.apply_queued()
    return _view(c, c.deal(deal_id).key, actor)


@router.post(
    ":batch",
    response_model=BatchOut,
    summary="Create many deals of one funnel (at most 1,000): each checked, evaluated in bulk",
    responses={422: {"description": "A strict or dry run with bad deals: each one's path and why"}},
)
def create_deals(body: DealsBatch, actor: ActorDep, c: ConveyorDep) -> BatchOut | JSONResponse:
    report = c.imports.import_items(
        body.funnel,
        [d.model_dump(exclude_none=True) for d in body.deals],
        dry_run=body.dry_run,
        strict=body.strict,
        actor=actor,
    )
    errors = [
        BatchProblem(
            path=f"deals[{p.row}].{p.column}" if p.column else f"deals[{p.row}]", message=p.message
        )
        for p in report.problems
    ]
    if errors and (body.strict or body.dry_run):
        detail = (
            _("{bad} of {count} deals are bad; nothing was written (dry run)")
            if body.dry_run
            else _("{bad} of {count} deals are bad; nothing was imported (strict)")
        ).format(bad=report.bad_rows, count=len(body.deals))
        return problem(422, detail, [e.model_dump() for e in errors])
    return BatchOut(
        import_id=report.import_id,
        dry_run=report.dry_run,
        imported=report.imported,
        skipped=report.skipped,
        keys=report.keys,
        errors=errors,
    )


@router.get(
    "/{key}", response_model=DealOut, summary="A deal: fields, stage, manager, open tasks, firings"
)
def get_deal(key: Key, actor: ActorDep, c: ConveyorDep) -> DealOut:
    return _view(c, key, actor)


@router.patch(
    "/{key}",
    response_model=DealOut,
    summary="Change a deal's fields, or give it to another manager (owner only)",
)
def update_deal(key: Key, body: DealPatch, actor: ActorDep, c: ConveyorDep) -> DealOut:
    mark = internal_queued()
    if body.manager is not None:
        deal_id = c.listings.deal_id(key, actor=actor, permission=Permission.REASSIGN_DEALS)
        c.deals.reassign(deal_id, body.manager, actor=actor)
    else:
        deal_id = c.listings.deal_id(key, actor=actor, permission=Permission.WRITE_DEALS)
        c.update_deal(deal_id, body.fields or {}, actor=actor)
    _apply_if_queued(c, mark)
    return _view(c, key, actor)


@router.post(
    "/{key}/move",
    response_model=DealOut,
    summary="Move a deal to a stage (409 when the stage's guard or the transitions refuse)",
)
def move_deal(key: Key, body: MoveIn, actor: ActorDep, c: ConveyorDep) -> DealOut:
    mark = internal_queued()
    c.move_deal(
        c.listings.deal_id(key, actor=actor, permission=Permission.MOVE_DEALS),
        body.stage,
        actor=actor,
    )
    _apply_if_queued(c, mark)
    return _view(c, key, actor)


@router.post(
    "/{key}/events", response_model=DealOut, summary="Record an event the deal's funnel declares"
)
async def record_event(
    key: Key, body: EventIn, actor: ActorDep, c: ConveyorDep, request: Request
) -> DealOut:
    writer = writer_of(request)
    if writer is None:  # no group commit (PostgreSQL): the thread pool, changes in parallel
        return await run_in_threadpool(_record_event, c, key, body, actor)

    def change() -> None:
        deal_id = c.listings.deal_id(key, actor=actor, permission=Permission.RECORD_EVENTS)
        c.record_event(deal_id, body.name, body.at, body.data, actor=actor)

    # grouped with the events arriving beside it; answered once its group's COMMIT returned
    return await writer.run(change, lambda _none: _view(c, key, actor))


def _record_event(c: Conveyor, key: str, body: EventIn, actor: Actor) -> DealOut:
    deal_id = c.listings.deal_id(key, actor=actor, permission=Permission.RECORD_EVENTS)
    mark = internal_queued()
    c.record_event(deal_id, body.name, body.at, body.data, actor=actor)
    _apply_if_queued(c, mark)
    return _view(c, key, actor)


@router.post(
    "/{key}/activities", response_model=DealOut, summary="Record a manager's call, note, meeting"
)
def record_activity(key: Key, body: ActivityIn, actor: ActorDep, c: ConveyorDep) -> DealOut:
    deal_id = c.listings.deal_id(key, actor=actor, permission=Permission.RECORD_ACTIVITIES)
    mark = internal_queued()
    c.record_activity(deal_id, body.kind, body.note, actor=actor)
    _apply_if_queued(c, mark)
    return _view(c, key, actor)

"""``/api/v1/funnels``: funnels, their versions, saving a rule-set document, export, activation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from engine.api.auth import conveyor_of, current_actor
from engine.api.models import FunnelOut, Page, VersionOut, decode_cursor, encode_cursor
from engine.core.access import Actor
from engine.core.conveyor import Conveyor
from engine.core.listings import MAX_PAGE
from engine.document.validate import parse_json
from engine.errors import InvalidChange, Problem, RuleSetInvalid

router = APIRouter(prefix="/api/v1/funnels", tags=["funnels"])
FunnelId = Annotated[str, Path(max_length=200)]
ActorDep = Annotated[Actor, Depends(current_actor)]
ConveyorDep = Annotated[Conveyor, Depends(conveyor_of)]
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000_000)]


def _version(v: object) -> VersionOut:
    return VersionOut.model_validate(v, from_attributes=True)


@router.get("", response_model=list[FunnelOut], summary="Every funnel, by id")
def list_funnels(actor: ActorDep, c: ConveyorDep) -> list[FunnelOut]:
    return [
        FunnelOut(id=f, name=n, active_version=v) for f, n, v in c.listings.funnels(actor=actor)
    ]


@router.get(
    "/{funnel}/versions",
    response_model=Page[VersionOut],
    summary="A funnel's versions, newest first (cursor pages)",
)
def list_versions(
    funnel: FunnelId,
    actor: ActorDep,
    c: ConveyorDep,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Page[VersionOut]:
    before = decode_cursor(cursor)  # the last version number of the previous page
    versions = [
        v for v in c.listings.versions(funnel, actor=actor) if not before or v.version < before
    ][:limit]
    return Page[VersionOut](
        items=[_version(v) for v in versions],
        next_cursor=encode_cursor(versions[-1].version) if len(versions) == limit else None,
    )


@router.post(
    "/{funnel}/versions",
    status_code=201,
    response_model=VersionOut,
    summary="Save a rule-set document as a new version (validated; active unless activate=false)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "A conveyor.ruleset/1 document (docs/ruleset-format.md)",
                    }
                }
            },
        }
    },
)
async def save_version(
    funnel: FunnelId,
    request: Request,
    actor: ActorDep,
    c: ConveyorDep,
    activate: bool = True,
    comment: Annotated[str, Query(max_length=2000)] = "",
) -> VersionOut:
    body = await request.body()

    def save() -> VersionOut:
        doc = parse_json(body, "the request body")
        if isinstance(doc, dict) and "funnel" in doc and doc["funnel"] != funnel:
            raise RuleSetInvalid(
                [
                    Problem(
                        "funnel",
                        f"the document is funnel {str(doc['funnel'])[:100]!r},"
                        f" not '{funnel}' of the URL",
                    )
                ]
            )
        return _version(
            c.save_ruleset(doc, comment=comment, author=actor.label, activate=activate, actor=actor)
        )

    return await run_in_threadpool(save)


@router.post(
    "/{funnel}/activate",
    response_model=VersionOut,
    summary="Make an existing version active (rollback)",
)
def activate(
    funnel: FunnelId,
    actor: ActorDep,
    c: ConveyorDep,
    version: Annotated[int, Query(ge=1, le=1_000_000_000)],
) -> VersionOut:
    return _version(c.activate(funnel, version, actor=actor))


@router.get(
    "/{funnel}/export",
    summary="The active (or a given) version as JSON",
    responses={200: {"content": {"application/json": {"schema": {}}}}},
)
def export(
    funnel: FunnelId,
    actor: ActorDep,
    c: ConveyorDep,
    format: Annotated[str, Query(pattern="^(conveyor|business-rules)$")] = "conveyor",
    version: Annotated[int | None, Query(ge=1, le=1_000_000_000)] = None,
) -> Response:
    if format not in ("conveyor", "business-rules"):
        raise InvalidChange(f"unknown export format '{format}'")
    return Response(
        c.listings.export(funnel, format, version, actor=actor), media_type="application/json"
    )

"""``POST /forms/{funnel}``: a website's lead form (form-encoded or JSON) with its public token.

CORS: a browser may post from the origins the funnel's forms list (``conveyor forms create FUNNEL
--origin https://example.com``); a preflight (``OPTIONS``) is answered for them only.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from engine.api.auth import conveyor_of
from engine.api.problems import from_exception
from engine.core.conveyor import Conveyor
from engine.core.forms import TOKEN_FIELD
from engine.errors import ConveyorError, Forbidden, InvalidChange

router = APIRouter(tags=["forms"])
Funnel = Annotated[str, Path(max_length=200)]
THANKS = (
    '<!doctype html><html><head><meta charset="utf-8"><title>Thank you</title></head>'
    "<body><p>Thank you! We will contact you soon.</p></body></html>"
)


def _cors(origin: str | None, allowed: set[str]) -> dict[str, str]:
    if origin and origin in allowed:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


@router.options("/forms/{funnel}", include_in_schema=False)
async def preflight(
    funnel: Funnel, request: Request, c: Annotated[Conveyor, Depends(conveyor_of)]
) -> Response:
    origin = request.headers.get("origin")
    allowed = await run_in_threadpool(c.forms.origins, funnel)
    headers = _cors(origin, allowed)
    if not headers:
        return Response(status_code=403)
    return Response(
        status_code=204,
        headers={
            **headers,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key",
            "Access-Control-Max-Age": "600",
        },
    )


@router.post(
    "/forms/{funnel}",
    status_code=201,
    summary="A lead from the website's form",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            TOKEN_FIELD: {"type": "string"},
                            "title": {"type": "string"},
                            "phone": {"type": "string"},
                            "email": {"type": "string"},
                        },
                    }
                },
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def submit(
    funnel: Funnel, request: Request, c: Annotated[Conveyor, Depends(conveyor_of)]
) -> Response:
    origin = request.headers.get("origin")
    allowed = await run_in_threadpool(c.forms.origins, funnel)
    cors = _cors(origin, allowed)
    wants_json = "json" in request.headers.get("content-type", "")
    try:
        if origin and not cors:
            raise Forbidden(f"this form does not accept submissions from {origin[:200]}")
        values: dict[str, Any]
        if wants_json:
            try:
                values = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError):
                raise InvalidChange("the body is not JSON") from None
            if not isinstance(values, dict):
                raise InvalidChange("the body must be a JSON object of field names and values")
        else:
            form = await request.form(max_files=0, max_fields=100)
            values = {k: v for k, v in form.items() if isinstance(v, str)}
        given = values.pop(TOKEN_FIELD, None) or request.headers.get("conveyor-form-token")
        token = given if isinstance(given, str) else ""  # none, or not text: refused as not valid
        client = request.client.host if request.client else "unknown"
        await run_in_threadpool(c.forms.submit, funnel, token, values, client=client, origin=origin)
        await run_in_threadpool(c.apply_queued)
    except ConveyorError as exc:
        problem = from_exception(exc)
        problem.headers.update(cors)
        return problem
    if wants_json:
        return JSONResponse({"received": True}, status_code=201, headers=cors)
    return HTMLResponse(THANKS, status_code=201, headers=cors)

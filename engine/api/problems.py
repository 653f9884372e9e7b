"""Errors as ``application/problem+json`` (RFC 9457), built from the engine's own messages.

``detail`` is the sentence the CLI prints for the same error (one error model); ``errors`` lists
``{"path", "message"}`` pairs: the validator's JSON paths for a refused rule set, ``fields.<name>``
for a deal's field, the request's own location for a malformed request. No traceback, no SQL.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.core.forms import RateLimited
from engine.errors import (
    Conflict,
    ConveyorError,
    Forbidden,
    GuardFailed,
    InvalidChange,
    NotFound,
    RuleSetInvalid,
    TransitionNotAllowed,
    Unauthenticated,
)
from storage.errors import StorageError

__all__ = ["MEDIA_TYPE", "install", "problem", "status_of"]

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("conveyor.api")

_STATUSES: list[tuple[type[BaseException], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (GuardFailed, 409),
    (TransitionNotAllowed, 409),
    (Conflict, 409),
    (RateLimited, 429),
    (RuleSetInvalid, 422),
    (InvalidChange, 422),
    (ConveyorError, 409),
    (ValueError, 422),
    (StorageError, 503),
]
_FIELD = re.compile(r"\bfield '([^']{1,200})'")
_BUILTIN = ("title", "phone", "email", "amount")


def status_of(exc: BaseException) -> int:
    return next((code for cls, code in _STATUSES if isinstance(exc, cls)), 500)


def problem(
    status: int,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"urn:conveyor:problem:{phrase.lower().replace(' ', '-')}",
        "title": phrase,
        "status": status,
        "detail": detail,
        "errors": errors if errors is not None else [{"path": "", "message": detail}],
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def errors_of(exc: BaseException) -> list[dict[str, str]]:
    if isinstance(exc, RuleSetInvalid):
        return [{"path": p.path, "message": p.message} for p in exc.problems]
    message = str(exc)
    if isinstance(exc, GuardFailed):
        return [{"path": f"fields.{name}", "message": message} for name in exc.missing]
    m = _FIELD.search(message)
    if m:
        name = m.group(1)
        return [{"path": name if name in _BUILTIN else f"fields.{name}", "message": message}]
    return [{"path": "", "message": message}]


def from_exception(exc: BaseException) -> JSONResponse:
    status = status_of(exc)
    if status == 500:
        log.error("internal error answering a request: %s", type(exc).__name__, exc_info=exc)
        return problem(500, "internal error; the server's log says more")
    if isinstance(exc, StorageError):
        return problem(503, str(exc), headers={"Retry-After": "5"})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(status, str(exc), errors_of(exc), headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(ConveyorError)
    async def _conveyor(_request: Request, exc: ConveyorError) -> JSONResponse:
        return from_exception(exc)

    @app.exception_handler(StorageError)
    async def _storage(_request: Request, exc: StorageError) -> JSONResponse:
        return from_exception(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"path": _location(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        detail = "; ".join(
            f"{e['path']}: {e['message']}" if e["path"] else e["message"] for e in errors
        )
        return problem(422, detail or "the request is not valid", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _any(_request: Request, exc: Exception) -> JSONResponse:
        from sqlalchemy.exc import SQLAlchemyError

        from storage.db import is_contention

        if isinstance(exc, SQLAlchemyError) and is_contention(exc):
            return problem(503, "the database is busy; try again", headers={"Retry-After": "1"})
        return from_exception(exc)

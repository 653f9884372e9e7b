"""``Authorization: Bearer <key>`` → the ``Actor`` the key stands for. What the role may do is
decided in the core (``engine.core.access``), not here."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from engine.core.access import Actor
from engine.core.conveyor import Conveyor
from engine.errors import Unauthenticated

__all__ = ["conveyor_of", "current_actor"]

_bearer = HTTPBearer(
    auto_error=False, description="An API key: `conveyor keys create NAME --role ROLE`"
)


async def conveyor_of(request: Request) -> Conveyor:
    """The application's ``Conveyor`` (a coroutine: FastAPI would run a plain function in its
    thread pool, a thread hand-off per request for an attribute read)."""
    return _conveyor(request)


def _conveyor(request: Request) -> Conveyor:
    conveyor: Conveyor = request.app.state.conveyor  # create_app puts it there
    return conveyor


async def current_actor(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("an API key is required: send Authorization: Bearer <key>")
    keys = _conveyor(request).api_keys
    # A key verified a moment ago costs a digest here, not a trip through the thread pool.
    known = keys.trusted(credentials.credentials)
    if known is not None:
        return known
    return await run_in_threadpool(keys.authenticate, credentials.credentials)

"""The HTTP API's application: routers per resource, problem+json errors, body limit, idempotency keys.

``create_app(db)`` builds it on one database; ``conveyor api`` serves it with uvicorn. ``/docs`` is
Swagger UI served from the ``swagger-ui-bundle`` package (no CDN); ``/openapi.json`` the schema.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from engine.api import (
    actions,
    deals,
    events,
    forms,
    funnels,
    hooks,
    problems,
    status,
    tasks,
    tracking,
)
from engine.api.writer import Writer
from engine.core.conveyor import Conveyor
from engine.core.idempotency import LEASE, Idempotency
from engine.errors import ConveyorError

__all__ = ["IDEMPOTENT_PREFIXES", "MAX_BODY", "create_app"]

#: Largest request body accepted (a rule-set document may be up to 2 MB); larger is 413.
MAX_BODY = 2_100_000
#: POSTs under these paths honour ``Idempotency-Key``.
IDEMPOTENT_PREFIXES = ("/api/v1/", "/hooks/", "/forms/")
log = logging.getLogger("conveyor.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _send_problem(
    send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    response = problems.problem(status, detail, headers=headers)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class BodyLimit:
    """413 for a body over ``MAX_BODY`` bytes, announced (Content-Length) or streamed (chunked)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return await _send_problem(
                send, 413, f"the request body is over the limit of {MAX_BODY} bytes"
            )
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                return await _send_problem(
                    send, 413, f"the request body is over the limit of {MAX_BODY} bytes"
                )
            more = message.get("more_body", False)
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, then: Receive) -> Receive:
    """The body read already, as one message; afterwards the connection's own messages (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await then()

    return receive


class IdempotencyKeys:
    """``Idempotency-Key`` on a POST: the first answer is stored and replayed (``engine.core.idempotency``)."""

    def __init__(self, app: ASGIApp, conveyor: Callable[[], Conveyor]):
        self.app = app
        self.conveyor = conveyor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].startswith(IDEMPOTENT_PREFIXES)
        ):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        raw_key = headers.get(b"idempotency-key")
        if raw_key is None:
            return await self.app(scope, receive, send)
        try:
            key = raw_key.decode("utf-8")
        except UnicodeDecodeError:
            return await _send_problem(send, 422, "Idempotency-Key is not UTF-8 text")
        message = await receive()
        body = message.get(
            "body", b""
        )  # BodyLimit (outside) has read the whole body into one message
        who = hashlib.sha256(headers.get(b"authorization", b"public")).hexdigest()[:32]
        digest = hashlib.sha256(
            b"\n".join(
                [
                    scope["method"].encode(),
                    scope["path"].encode("utf-8", "replace"),
                    scope.get("query_string", b""),
                    body,
                ]
            )
        ).hexdigest()
        idem = self.conveyor().idempotency
        try:
            replay = await run_in_threadpool(idem.begin, who, key, digest)
        except ConveyorError as exc:
            response = problems.from_exception(exc)
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": response.raw_headers,
                }
            )
            await send({"type": "http.response.body", "body": response.body})
            return None
        if replay is not None:
            stored = json.loads(replay.body)
            raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored["headers"]]
            await send(
                {
                    "type": "http.response.start",
                    "status": replay.status,
                    "headers": [*raw_headers, (b"idempotent-replayed", b"true")],
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": stored["body"].encode("utf-8", "surrogateescape"),
                }
            )
            return None
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        renewal = asyncio.ensure_future(_keep_lease(idem, who, key))
        try:
            await self.app(scope, _replay(body, receive), capture)
        except BaseException:
            await run_in_threadpool(idem.abandon, who, key)
            raise
        finally:
            renewal.cancel()
        status = int(start.get("status", 500))
        if status >= 500:  # not the caller's doing: the same key may try again
            await run_in_threadpool(idem.abandon, who, key)
            return None
        kept = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in start.get("headers", [])
            if k.lower() in (b"content-type", b"location", b"retry-after", b"www-authenticate")
        ]
        stored_body = json.dumps(
            {"headers": kept, "body": b"".join(chunks).decode("utf-8", "surrogateescape")}
        )
        await run_in_threadpool(idem.finish, who, key, status, stored_body)


#: Lease renewals get threads of their own: a pool busy with requests must not starve them.
_RENEWALS = anyio.CapacityLimiter(4)


async def _keep_lease(idem: Idempotency, who: str, key: str) -> None:
    """Renew the request's claim every third of its lease while it runs (cancelled when it ends)."""
    while True:
        await anyio.sleep(LEASE.total_seconds() / 3)
        try:
            await anyio.to_thread.run_sync(idem.renew, who, key, limiter=_RENEWALS)
        except Exception:  # a lost renewal only shortens the lease; the request goes on
            log.warning("could not renew an Idempotency-Key lease", exc_info=True)


class _MaskTokens(logging.Filter):
    """Access-log lines show ``/t/…`` instead of a tracking token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            isinstance(record.args, tuple)
            and len(record.args) >= 3
            and isinstance(record.args[2], str)
            and record.args[2].startswith("/t/")
        ):
            record.args = (*record.args[:2], "/t/…", *record.args[3:])
        return True


def create_app(db: str | Conveyor | None = None) -> FastAPI:
    """The API on database ``db`` (a URL, or a ready ``Conveyor``; default ``CONVEYOR_DB``)."""
    holder: dict[str, Conveyor] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = not isinstance(db, Conveyor)
        conveyor = db if isinstance(db, Conveyor) else Conveyor(db)
        holder["c"] = app.state.conveyor = conveyor
        # events and hooks: one writer thread groups their changes (SQLite's group commit)
        writer = Writer(conveyor) if conveyor.group_commit.enabled else None
        app.state.writer = writer
        if writer is not None:
            writer.start()
        try:
            yield
        finally:
            if writer is not None:
                writer.stop()
            if own:
                conveyor.close()

    app = FastAPI(
        title="Conveyor API",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Deals, events, tasks, actions and funnels of Conveyor; signed hooks, website"
        " forms and proposal links. Errors are application/problem+json (RFC 9457)."
        " See docs/api.md.",
    )
    problems.install(app)
    for module in (deals, events, tasks, actions, funnels, status, hooks, forms, tracking):
        app.include_router(module.router)

    import swagger_ui_bundle

    app.mount(
        "/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui"
    )

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Conveyor API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )

    app.add_middleware(IdempotencyKeys, conveyor=lambda: holder["c"])
    app.add_middleware(BodyLimit)
    logging.getLogger("uvicorn.access").addFilter(_MaskTokens())
    return app

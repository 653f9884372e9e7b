"""The HTTP door (FastAPI): ``create_app`` in ``app``, one router per resource, errors as problem+json.

app         the application: routers, body limit, Idempotency-Key, /docs without a CDN
auth        Authorization: Bearer <key> → the Actor (roles are checked in the core)
problems    application/problem+json from the engine's ConveyorError messages
models      request and response bodies (pydantic)
deals, events, tasks, actions, funnels, status   /api/v1 resources
hooks       POST /hooks/{name}: signed inbound webhooks
forms       POST /forms/{funnel}: the website's lead form
tracking    GET /t/{token}: proposal links
"""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    # Lazy, so that importing a router does not build the whole application first.
    if name == "create_app":
        from engine.api.app import create_app

        return create_app
    raise AttributeError(name)

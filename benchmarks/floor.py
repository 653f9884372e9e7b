"""The HTTP door's own ceiling: ``conveyor api``'s application (same middleware, same API-key
dependency, same uvicorn settings) with two trivial endpoints beside the real ones, which parse the
same ``EventIn`` body, check the key and answer a small JSON without touching the database:

- ``POST /floor/async/{key}/events`` runs on the event loop;
- ``POST /floor/sync/{key}/events`` runs in FastAPI's thread pool (one thread hand-off and back).

What one process serves there is the rate no endpoint of ours can pass in that process; the
difference to ``/api/v1/deals/{key}/events`` is our work. Started by ``benchmarks.api`` as
``python -m benchmarks.floor --port N`` on ``CONVEYOR_DB``.
"""

from __future__ import annotations

import argparse
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI

from engine.api.app import create_app
from engine.api.auth import current_actor
from engine.api.models import EventIn
from engine.core.access import Actor
from engine.core.conveyor import Conveyor


def floor_app(conveyor: Conveyor) -> FastAPI:
    app = create_app(conveyor)

    @app.post("/floor/async/{key}/events")
    async def floor_async(
        key: str, body: EventIn, actor: Annotated[Actor, Depends(current_actor)]
    ) -> dict[str, Any]:
        return {"key": key, "name": body.name, "by": actor.name}

    @app.post("/floor/sync/{key}/events")
    def floor_sync(
        key: str, body: EventIn, actor: Annotated[Actor, Depends(current_actor)]
    ) -> dict[str, Any]:
        return {"key": key, "name": body.name, "by": actor.name}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    conveyor = Conveyor()  # CONVEYOR_DB
    # the settings of ``conveyor api`` (engine/cli/doors.py)
    uvicorn.run(
        floor_app(conveyor),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    conveyor.close()


if __name__ == "__main__":
    main()

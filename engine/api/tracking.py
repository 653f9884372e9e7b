"""``GET /t/{token}``: a client opens a tracking link (an event's ``link`` placeholder in a message,
techflow's ``{proposal_link}``).

A valid token records the link's ``opened`` event once and redirects to the URL its event carries;
a forged or expired one records nothing and gets a plain page (never an error document, never a
traceback).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from engine.api.auth import conveyor_of
from engine.core.conveyor import Conveyor
from engine.errors import ConveyorError

router = APIRouter(tags=["tracking"])
log = logging.getLogger("conveyor.api")


def _page(text: str, status: int) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html><head><meta charset="utf-8"><title>Conveyor</title></head>'
        f"<body><p>{text}</p></body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.get(
    "/t/{token}",
    summary="A tracking link: records the link's opened event once, redirects to its URL",
    response_class=HTMLResponse,
    responses={303: {"description": "to the proposal's URL"}},
)
async def open_link(
    token: Annotated[str, Path(max_length=500)], c: Annotated[Conveyor, Depends(conveyor_of)]
) -> Response:
    try:
        opened = await run_in_threadpool(c.links.open, token)
    except ConveyorError as exc:  # e.g. the funnel no longer declares the link
        log.warning("a proposal link could not be recorded: %s", exc)
        return _page("This link cannot be opened right now.", 409)
    if opened is None:
        return _page("This link is not valid or has expired.", 404)
    if opened.recorded:
        await run_in_threadpool(c.apply_queued)
    if opened.url and opened.url.startswith(("https://", "http://")):
        return RedirectResponse(
            opened.url, status_code=303, headers={"Referrer-Policy": "no-referrer"}
        )
    return _page("Thank you. The proposal will be sent to you shortly.", 200)

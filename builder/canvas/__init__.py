"""The Designer's editing canvas: a bidirectional Streamlit component (custom components v2) over vis-network.

vis-network's standalone bundle ships in ``builder/canvas/static`` (built from ``frontend/`` with npm;
no CDN) and is sent inline with the component's own script. The canvas reports one gesture per rerun
(``funnel_canvas`` returns it): ``select`` (node), ``move`` (node, x, y), ``connect`` (from, to) and
``delete_edge`` (from, to). The page turns those into document edits (``builder.canvas.edits``).
``read_only=True`` (a role that may not change the funnel) draws the same picture with no editing:
nodes do not drag, nothing connects or deletes, the edit buttons are gone and the bar says so; a click
on a node still selects it (to read its panel).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import streamlit as st

from builder.canvas.layout import STAGE_STEP
from engine.i18n import _

__all__ = ["STATIC", "funnel_canvas"]

STATIC = Path(__file__).resolve().parent / "static"
NAME = "conveyor_funnel_canvas"


@cache
def _component() -> Any:
    js = (
        (STATIC / "vis-network.min.js").read_text(encoding="utf-8")
        + "\n"
        + (STATIC / "canvas.js").read_text(encoding="utf-8")
    )
    css = (STATIC / "canvas.css").read_text(encoding="utf-8")
    # No shadow root: vis-network injects its stylesheet into the document, and the page's fonts apply.
    return st.components.v2.component(NAME, html="", css=css, js=js, isolate_styles=False)


def _texts() -> dict[str, str]:
    """The canvas's own buttons and hints in the reader's language (the script has English ones)."""
    return {
        "fit": "⤢ " + _("Fit to view"),
        "reset": "1:1 " + _("Reset zoom"),
        "move": "✥ " + _("Move nodes"),
        "connect": "➜ " + _("Connect stages"),
        "delete": "✕ " + _("Delete transition"),
        "delete_edge": "✕ " + _("Delete {source} → {target}"),
        "hint_move": _(
            "Drag to move · drag a stage's ● handle (or Shift+drag) to connect · click an arrow to "
            "select it"
        ),
        "hint_connect": _("Drag from one stage to another to allow that move."),
        "hint_edge": _("Press Delete (or the button) to remove this transition."),
        "read_only": "👁️ "
        + _("Read only: click a stage or a rule to read it; your role cannot change the funnel."),
    }


def _ignore() -> None:
    """The trigger is read from the return value; a callback only has to exist for it to be reported."""


def funnel_canvas(
    elements: dict[str, Any],
    *,
    key: str,
    selected: str | None,
    revision: int,
    height: int = 600,
    read_only: bool = False,
) -> dict[str, Any] | None:
    """Draw the canvas; return the gesture the owner just made (or None). ``read_only``: only
    ``select`` can come back (the page ignores any other gesture from a read-only canvas too).

    ``revision`` changes whenever Python has handled a gesture, so the canvas redraws from the
    document even when nothing in it changed (a refused move snaps back).
    """
    result = _component()(
        key=key,
        data={
            **elements,
            "selected": selected,
            "revision": revision,
            "height": height,
            "step": STAGE_STEP,
            "texts": _texts(),
            "read_only": read_only,
        },
        on_edit_change=_ignore,
        height="content",
    )
    event = getattr(result, "edit", None)
    if not isinstance(event, dict) or (read_only and event.get("type") != "select"):
        return None
    return event

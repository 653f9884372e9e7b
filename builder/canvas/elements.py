"""The document as the canvas draws it: JSON-ready nodes and edges for vis-network.

Labels and tooltips are plain text (vis-network draws labels on the canvas and puts string titles in
``innerText``), so user text is shown as typed; control characters are dropped and labels wrap at
word boundaries — a word is never cut in the middle.
"""

from __future__ import annotations

import re
from typing import Any

from builder.canvas.layout import DENSE, attached_stage
from builder.components import (
    KIND_COLOURS,
    KIND_NAMES,
    RULE_COLOUR,
    RULE_DISABLED_COLOUR,
    RULE_HIGH_COLOUR,
    RuleData,
    high_priority,
    move_targets,
    rule_summaries,
    watched_stage,
)
from engine.document.labels import label
from engine.i18n import _

__all__ = ["canvas_elements", "edge_id", "wrap_words"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
SELECTED_BORDER = "#111827"


def wrap_words(text: Any, width: int = 16, max_lines: int = 3) -> str:
    """``text`` on lines of about ``width`` characters, broken only between words.

    A word longer than ``width`` keeps a line of its own; past ``max_lines`` the last line ends with
    "…" after a whole word.
    """
    words = _CONTROL.sub(" ", str(text)).split()
    lines: list[str] = []
    for w in words:
        if lines and len(lines[-1]) + 1 + len(w) <= width:
            lines[-1] += " " + w
        else:
            lines.append(w)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] += " …"
    return "\n".join(lines)


def _plain(text: Any, limit: int = 160) -> str:
    text = _CONTROL.sub(" ", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def edge_id(from_id: str, to_id: str) -> str:
    return f"t:{from_id}>{to_id}"


def canvas_elements(
    doc: dict[str, Any], rd: RuleData, selected: str | None = None, *, read_only: bool = False
) -> dict[str, Any]:
    """``{"nodes": [...], "edges": [...]}`` for the canvas component (``read_only``: the hover hints
    say what a reader can do — click to read — not how to edit)."""
    stages = doc.get("stages", [])
    stage_ids = {s["id"] for s in stages}
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for s in stages:
        kind = s.get("kind", "open")
        colour = KIND_COLOURS.get(kind, KIND_COLOURS["open"])
        pos = s.get("position") or {"x": 0, "y": 0}
        guard = (s.get("guard") or {}).get("required_fields") or []
        nid = f"stage:{s['id']}"
        chosen = nid == selected
        title = (
            _("Stage: {name}").format(name=_plain(label(s["name"])))
            + f"\nid: {s['id']} · {_(KIND_NAMES.get(kind, kind))}"
            + (
                "\n" + _("required to enter: {fields}").format(fields=_plain(", ".join(guard)))
                if guard
                else ""
            )
            + "\n"
            + (
                _("click to read it")
                if read_only
                else _("click to edit · drag to move · drag from the ● handle to allow a move")
            )
        )
        nodes.append(
            {
                "id": nid,
                "cv": "stage",
                "label": wrap_words(label(s["name"])) + (" 🔒" if guard else ""),
                "title": title,
                "x": pos["x"],
                "y": pos["y"],
                "shape": "box",
                "margin": 12,
                "borderWidth": 4 if chosen else 1,
                "borderWidthSelected": 4,
                # Selecting keeps the stage's own colours (vis' default highlight is pale blue, where
                # white text disappears); a dark frame marks the selection instead.
                "color": {
                    "background": colour,
                    "border": SELECTED_BORDER if chosen else colour,
                    "highlight": {"background": colour, "border": SELECTED_BORDER},
                    "hover": {"background": colour, "border": SELECTED_BORDER},
                },
                "font": {
                    "color": "#FFFFFF",
                    "size": 18,
                    "face": "Inter, Arial, sans-serif",
                    "multi": False,
                },
                "shadow": {
                    "enabled": chosen,
                    "size": 12,
                    "x": 0,
                    "y": 3,
                    "color": "rgba(17,24,39,0.35)",
                },
            }
        )
    for t in doc.get("transitions", []):
        if t.get("from") in stage_ids and t.get("to") in stage_ids:
            eid = edge_id(t["from"], t["to"])
            edges.append(
                {
                    "id": eid,
                    "cv": "transition",
                    "from": f"stage:{t['from']}",
                    "to": f"stage:{t['to']}",
                    "arrows": "to",
                    "width": 2,
                    "color": {"color": "#64748B", "highlight": "#111827", "hover": "#334155"},
                    "selectionWidth": 2,
                    "smooth": {"type": "curvedCW", "roundness": 0.12},
                    "title": _("Transition")
                    if read_only
                    else _("Transition: click to select, then Delete to remove it"),
                }
            )
    per_stage: dict[str, int] = {}
    for r in doc.get("rules", []):
        sid = attached_stage(r, stage_ids)
        if sid:
            per_stage[sid] = per_stage.get(sid, 0) + 1
    for r in doc.get("rules", []):
        pos = r.get("position") or {"x": 0, "y": 0}
        enabled = r.get("enabled", True)
        colour = RULE_HIGH_COLOUR if high_priority(r) else RULE_COLOUR
        if not enabled:
            colour = RULE_DISABLED_COLOUR
        nid = f"rule:{r['id']}"
        chosen = nid == selected
        sid = attached_stage(r, stage_ids)
        dense = per_stage.get(sid or "", 0) > DENSE
        name = label(r.get("name")) or r["id"]
        # The rule in the owner's words: the tooltip in full; the label without "In <stage>", since
        # the node hangs at its stage already.
        full, short = rule_summaries(r, rd)
        title = (
            f"{_plain(full, 400)}\n"
            + _("Rule: {name}").format(name=_plain(name))
            + ("" if enabled else " " + _("(disabled)"))
        )
        # In a dense grid only the selected rule is labelled (the others on hover): labels would overlap.
        # Unselected labels take the room a name took (two short lines); the selected one says it all.
        shown = (
            wrap_words(short, 26, 6) if chosen else wrap_words(short, 22, 2) if not dense else ""
        )
        nodes.append(
            {
                "id": nid,
                "cv": "rule",
                "label": shown,
                "title": title,
                "shape": "dot",
                "size": 13 if chosen else 9,
                "x": pos["x"],
                "y": pos["y"],
                "attachedTo": f"stage:{sid}" if sid else None,
                "borderWidth": 3 if chosen else 1,
                "borderWidthSelected": 3,
                "color": {
                    "background": colour,
                    "border": SELECTED_BORDER if chosen else colour,
                    "highlight": {"background": colour, "border": SELECTED_BORDER},
                    "hover": {"background": colour, "border": SELECTED_BORDER},
                },
                "font": {
                    "size": 21 if chosen else 19,
                    "color": "#111827" if chosen else "#1F2937",
                    "face": "Inter, Arial, sans-serif",
                    "background": "rgba(255,255,255,0.92)",
                    "bold": {"color": "#111827"},
                },
                # Labels of unselected rules fade out when zoomed far out instead of turning into noise.
                "scaling": {"label": {"drawThreshold": 0 if chosen else 5}},
            }
        )
        watched = watched_stage(r)
        if watched in stage_ids:
            edges.append(
                {
                    "id": f"a:{r['id']}",
                    "cv": "attach",
                    "from": nid,
                    "to": f"stage:{watched}",
                    "color": {"color": "#FCD34D", "highlight": "#F59E0B"},
                    "width": 1,
                    "dashes": True,
                    "arrows": "",
                    "smooth": False,
                    "selectable": False,
                }
            )
        for target in move_targets(r):
            if target in stage_ids:
                edges.append(
                    {
                        "id": f"m:{r['id']}>{target}",
                        "cv": "move",
                        "from": nid,
                        "to": f"stage:{target}",
                        "color": {"color": colour},
                        "width": 2,
                        "arrows": "to",
                        "dashes": [6, 4],
                        "smooth": {"type": "curvedCCW", "roundness": 0.2},
                    }
                )
    return {"nodes": nodes, "edges": edges}

"""What a gesture on the canvas does to the rule-set document, as plain functions over the dict.

Each function changes ``doc`` in place and returns one sentence for the version comment ("Moved stage
Paid"), or raises ``EditRefused`` with the reason and leaves ``doc`` untouched. Whether the result is
valid is the validator's call (the Designer validates before it saves anything).
"""

from __future__ import annotations

from typing import Any

from builder.canvas.layout import STAGE_STEP, shift_stage
from engine.document.ids import unique_id
from engine.document.labels import label
from engine.errors import ConveyorError
from engine.i18n import _

__all__ = ["EditRefused", "add_transition", "insert_stage_after", "move_node", "remove_transition"]


class EditRefused(ConveyorError):
    """A canvas gesture that cannot be applied (the message says why); nothing was changed."""


def _stage(doc: dict[str, Any], sid: str) -> dict[str, Any]:
    s = next((s for s in doc.get("stages", []) if s["id"] == sid), None)
    if s is None:
        raise EditRefused(_("there is no stage '{id}' in this funnel").format(id=sid))
    return s


def _name(doc: dict[str, Any], sid: str) -> str:
    s = next((s for s in doc.get("stages", []) if s["id"] == sid), None)
    return label(s["name"]) if s else sid


def move_node(doc: dict[str, Any], node: str, x: float, y: float) -> str:
    """Put a node at (x, y); a stage takes the rules drawn with it along."""
    kind, _sep, ident = node.partition(":")
    x, y = float(round(x, 1)), float(round(y, 1))
    if kind == "stage":
        s = _stage(doc, ident)
        old = s.get("position") or {"x": x, "y": y}
        shift_stage(doc, ident, x - old["x"], y - old["y"])
        s["position"] = {"x": x, "y": y}
        return _("Moved stage {stage}").format(stage=label(s["name"]))
    if kind == "rule":
        r = next((r for r in doc.get("rules", []) if r["id"] == ident), None)
        if r is None:
            raise EditRefused(_("there is no rule '{id}' in this funnel").format(id=ident))
        r["position"] = {"x": x, "y": y}
        return _("Moved rule {rule}").format(rule=label(r.get("name")) or ident)
    raise EditRefused(_("'{node}' is not a stage or a rule").format(node=node))


def add_transition(doc: dict[str, Any], from_id: str, to_id: str) -> str:
    """Allow deals to move from one stage to another."""
    _stage(doc, from_id), _stage(doc, to_id)
    if from_id == to_id:
        raise EditRefused(
            _("a stage cannot lead to itself ({stage})").format(stage=_name(doc, from_id))
        )
    if {"from": from_id, "to": to_id} in doc.get("transitions", []):
        raise EditRefused(
            _("{source} → {target} is already allowed").format(
                source=_name(doc, from_id), target=_name(doc, to_id)
            )
        )
    doc.setdefault("transitions", []).append({"from": from_id, "to": to_id})
    return _("Allowed {source} → {target}").format(
        source=_name(doc, from_id), target=_name(doc, to_id)
    )


def remove_transition(doc: dict[str, Any], from_id: str, to_id: str) -> str:
    t = {"from": from_id, "to": to_id}
    if t not in doc.get("transitions", []):
        raise EditRefused(
            _("{source} → {target} is not a transition of this funnel").format(
                source=_name(doc, from_id), target=_name(doc, to_id)
            )
        )
    doc["transitions"] = [x for x in doc["transitions"] if x != t]
    return _("Removed the transition {source} → {target}").format(
        source=_name(doc, from_id), target=_name(doc, to_id)
    )


def insert_stage_after(
    doc: dict[str, Any], after: str, name: str, sid: str | None = None, kind: str = "open"
) -> tuple[str, str]:
    """Insert a stage after ``after``: its moves forward now pass through the new stage.

    Every transition ``after → Y`` becomes ``new → Y`` and ``after → new`` is added; a move into a lost
    stage stays allowed from ``after`` and is allowed from the new stage too (a deal can be lost at
    any step). The stages to the right of ``after`` in its row move one step right, with their rules,
    and the new stage takes the free place. Returns (the new stage's id, a sentence for the comment).
    """
    base = _stage(doc, after)
    name = name.strip()
    if not name:
        raise EditRefused(_("give the new stage a name"))
    taken = {s["id"] for s in doc.get("stages", [])}
    sid = (sid or "").strip() or unique_id(name, taken, "stage")
    if sid in taken:
        raise EditRefused(_("a stage with id '{id}' already exists").format(id=sid))
    kinds = {s["id"]: s.get("kind", "open") for s in doc.get("stages", [])}

    transitions = doc.setdefault("transitions", [])
    rewired: list[dict[str, str]] = []
    for t in transitions:
        if t["from"] == after and kinds.get(t["to"]) == "lost":
            rewired.append(t)
            rewired.append({"from": sid, "to": t["to"]})
        elif t["from"] == after:
            rewired.append({"from": sid, "to": t["to"]})
        else:
            rewired.append(t)
    at = next((i for i, t in enumerate(transitions) if t["from"] == after), len(transitions))
    rewired.insert(at, {"from": after, "to": sid})
    doc["transitions"] = rewired

    # Lay the row out again: everything right of `after` in its row moves one step right.
    pos = base.get("position") or {"x": 0.0, "y": 0.0}
    row = [
        s
        for s in doc["stages"]
        if s.get("position")
        and abs(s["position"]["y"] - pos["y"]) < 80
        and s["position"]["x"] > pos["x"]
    ]
    step = min((s["position"]["x"] - pos["x"] for s in row), default=STAGE_STEP)
    step = max(step, STAGE_STEP)
    for s in row:
        shift_stage(doc, s["id"], step, 0)
    index = next(i for i, s in enumerate(doc["stages"]) if s["id"] == after) + 1
    doc["stages"].insert(
        index,
        {
            "id": sid,
            "name": name,
            "kind": kind,
            "position": {"x": float(pos["x"] + step), "y": float(pos["y"])},
        },
    )
    return sid, _("Inserted stage {stage} after {after}").format(
        stage=name, after=label(base["name"])
    )

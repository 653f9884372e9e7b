"""Where nodes go on the Designer's canvas: stages in rows, rules hung above the stage they belong to.

Positions live in the document (``stages[].position``, ``rules[].position``); these functions only
fill in missing ones or move a group of nodes, so the owner's own arrangement is never reshuffled.
"""

from __future__ import annotations

import math
from typing import Any

from builder.components import move_targets, watched_stage

__all__ = [
    "STAGE_STEP",
    "attached_stage",
    "ensure_positions",
    "free_rule_slot",
    "is_dense",
    "shift_stage",
]

#: Distance between neighbouring stages in a row, and between rows of a long funnel.
STAGE_STEP = 220
ROW_STEP = 340
#: A long funnel wraps onto a new row after this many stages, so fit-to-view keeps labels readable.
PER_ROW = 6
#: Rules closer than this to another node count as landing on it.
MIN_GAP = 34
#: Above this many rules a stage hangs them in a compact grid (labels on hover and when zoomed in).
DENSE = 4


def attached_stage(rule: dict[str, Any], stage_ids: set[str]) -> str | None:
    """The stage a rule is drawn with: the one it watches, else the first one it moves deals into."""
    sid = watched_stage(rule)
    if sid in stage_ids:
        return sid
    return next((t for t in move_targets(rule) if t in stage_ids), None)


def _rules_of(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    ids = {s["id"] for s in doc.get("stages", [])}
    out: dict[str, list[dict[str, Any]]] = {}
    for r in doc.get("rules", []):
        sid = attached_stage(r, ids)
        if sid is not None:
            out.setdefault(sid, []).append(r)
    return out


def is_dense(doc: dict[str, Any], sid: str) -> bool:
    return len(_rules_of(doc).get(sid, [])) > DENSE


def _slot(base: dict[str, float], k: int, dense: bool, below: bool) -> dict[str, float]:
    sign = 1 if below else -1
    if dense:  # four to a row, 44 apart: ten rules take three short rows
        col, row = k % 4, k // 4
        return {"x": base["x"] + (col - 1.5) * 44, "y": base["y"] + sign * (80 + 40 * row)}
    # A short column, every second rule slightly to the right, so two-line labels do not touch.
    return {"x": base["x"] + (45 if k % 2 else -45), "y": base["y"] + sign * (100 + 60 * k)}


class _Occupied:
    """Positions already taken, hashed by cell so checking a slot looks at a few neighbours only."""

    def __init__(self, doc: dict[str, Any], skip: dict[str, Any] | None = None) -> None:
        self.cells: dict[tuple[int, int], list[tuple[float, float]]] = {}
        for n in [*doc.get("stages", []), *doc.get("rules", [])]:
            if n is not skip and n.get("position"):
                self.add(n["position"])

    def _cell(self, x: float, y: float) -> tuple[int, int]:
        return int(x // MIN_GAP), int(y // MIN_GAP)

    def add(self, p: dict[str, float]) -> None:
        self.cells.setdefault(self._cell(p["x"], p["y"]), []).append((p["x"], p["y"]))

    def free(self, p: dict[str, float]) -> bool:
        cx, cy = self._cell(p["x"], p["y"])
        return all(
            math.hypot(p["x"] - x, p["y"] - y) >= MIN_GAP
            for i in (-1, 0, 1)
            for j in (-1, 0, 1)
            for x, y in self.cells.get((cx + i, cy + j), ())
        )

    def lowest(self) -> float:
        return max((y for pts in self.cells.values() for _, y in pts), default=0.0)


def free_rule_slot(
    doc: dict[str, Any],
    rule: dict[str, Any],
    *,
    _occupied: _Occupied | None = None,
    _counts: dict[str, int] | None = None,
) -> dict[str, float]:
    """A position for ``rule`` near its stage that no other node occupies (a new rule never lands on one)."""
    stages = {s["id"]: s for s in doc.get("stages", []) if s.get("position")}
    sid = attached_stage(rule, set(stages))
    occupied = _occupied or _Occupied(doc, skip=rule)
    counts = _counts if _counts is not None else {k: len(v) for k, v in _rules_of(doc).items()}
    if sid is not None:
        base = stages[sid]["position"]
        below = (
            watched_stage(rule) != sid
        )  # a rule that only moves deals into a stage hangs below it
        dense = counts.get(sid, 0) > DENSE
        for k in range(2000):
            p = _slot(base, k, dense, below)
            if occupied.free(p):
                return p
    y = occupied.lowest() + 160  # rules of no stage: a row under everything
    x = 0.0
    while not occupied.free({"x": x, "y": y}):
        x += 180
    return {"x": x, "y": y}


def ensure_positions(doc: dict[str, Any]) -> bool:
    """Give every stage and rule without a position one; True when anything was added.

    A funnel with no positions at all is laid out in rows of ``PER_ROW``; otherwise new stages
    continue the first row to the right. Rules go to a free slot by their stage.
    """
    changed = False
    stages = doc.get("stages", [])
    placed = [s for s in stages if s.get("position")]
    if not placed and stages:
        rows = _rows_needed(doc, len(stages))
        for i, s in enumerate(stages):
            row, col = divmod(i, PER_ROW)
            s["position"] = {"x": float(col * STAGE_STEP), "y": float(row * rows)}
        changed = True
    else:
        next_x = max((s["position"]["x"] for s in placed), default=-STAGE_STEP) + STAGE_STEP
        for s in stages:
            if not s.get("position"):
                s["position"] = {"x": float(next_x), "y": 0.0}
                next_x += STAGE_STEP
                changed = True
    missing = [r for r in doc.get("rules", []) if not r.get("position")]
    if missing:
        occupied = _Occupied(doc)
        counts = {k: len(v) for k, v in _rules_of(doc).items()}
        for r in missing:
            r["position"] = free_rule_slot(doc, r, _occupied=occupied, _counts=counts)
            occupied.add(r["position"])
        changed = True
    return changed


def _rows_needed(doc: dict[str, Any], n_stages: int) -> float:
    """Row distance for a fresh layout: room for the tallest stack of rules hung above a stage."""
    if n_stages <= PER_ROW:
        return ROW_STEP
    most = max((len(v) for v in _rules_of(doc).values()), default=0)
    stack = 80 + 40 * ((most + 3) // 4) if most > DENSE else 100 + 60 * most
    return float(max(ROW_STEP, stack + 140))


def shift_stage(doc: dict[str, Any], sid: str, dx: float, dy: float) -> None:
    """Move a stage and the rules drawn with it by (dx, dy)."""
    ids = {s["id"] for s in doc.get("stages", [])}
    for s in doc.get("stages", []):
        if s["id"] == sid and s.get("position"):
            s["position"] = {"x": _r(s["position"]["x"] + dx), "y": _r(s["position"]["y"] + dy)}
    for r in doc.get("rules", []):
        if r.get("position") and attached_stage(r, ids) == sid:
            r["position"] = {"x": _r(r["position"]["x"] + dx), "y": _r(r["position"]["y"] + dy)}


def _r(v: float) -> float:
    return float(round(v, 1))

"""Playwright helpers for the Designer's canvas (builder/canvas): where a node or an edge is on the page.

The canvas keeps its vis-network object on its root element (``.cv-root.__network``), so a test asks
vis-network for canvas positions and turns them into page pixels, then drives the real mouse.
"""

from __future__ import annotations

import time
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

_NODE_JS = """([id, where]) => {
  const root = document.querySelector('.cv-root');
  const net = root && root.__network;
  if (!net) return null;
  const p = net.getPositions([id])[id];
  if (!p) return null;
  let c = p;
  if (where === 'handle') { const b = net.getBoundingBox(id); c = {x: b.right, y: (b.top + b.bottom) / 2}; }
  const d = net.canvasToDOM(c);
  const r = root.querySelector('.cv-net').getBoundingClientRect();
  return {x: r.left + d.x, y: r.top + d.y, cx: p.x, cy: p.y, scale: net.getScale(),
          revision: root.dataset.revision};
}"""

_EDGE_JS = """(id) => {
  const root = document.querySelector('.cv-root');
  const net = root && root.__network;
  const e = net && net.body.edges[id];
  if (!e) return null;
  const c = e.edgeType.getPoint(0.5);
  const d = net.canvasToDOM(c);
  const r = root.querySelector('.cv-net').getBoundingClientRect();
  return {x: r.left + d.x, y: r.top + d.y};
}"""


def launch(p: Any) -> Any:
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def node_point(
    page: Any, node_id: str, where: str = "centre", timeout: float = 30
) -> dict[str, float]:
    """Page coordinates (and canvas position, scale) of a node once the canvas has drawn it and no
    script run is still drawing the page (which could move the canvas before a drag)."""
    from tests.builder.support import wait_until_idle

    page.locator(".cv-root .cv-net canvas").first.wait_for(timeout=timeout * 1000)
    wait_until_idle(page, timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pos = page.evaluate(_NODE_JS, [node_id, where])
        if pos:
            return pos
        time.sleep(0.1)
    raise AssertionError(f"node {node_id} is not on the canvas")


def edge_point(page: Any, edge_id: str) -> dict[str, float]:
    pos = page.evaluate(_EDGE_JS, edge_id)
    assert pos, f"edge {edge_id} is not on the canvas"
    return pos


def drag(page: Any, start: tuple[float, float], end: tuple[float, float], steps: int = 12) -> None:
    """Press at ``start``, move to ``end`` in small steps (as a hand does), release."""
    page.mouse.move(*start)
    time.sleep(0.2)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(
            start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps
        )
        time.sleep(0.03)
    page.mouse.up()


def settled(page: Any, seconds: float = 1.0) -> None:
    """Let the canvas redraw after a rerun (for a screenshot)."""
    time.sleep(seconds)

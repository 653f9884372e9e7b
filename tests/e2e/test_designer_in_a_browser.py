"""End to end in a real browser: `streamlit run builder/app.py` on localhost, driven by Playwright.

Uses Debian's Chromium (browsers cannot be downloaded here). Clicks a stage node inside the
streamlit-agraph iframe, checks that its editor opens, and leaves screenshots in ``test-output/``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli.demo_data import load_demo
from engine.core.conveyor import Conveyor
from tests.builder.support import served_builder

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.browser

# The vis-network object lives in a React hook of react-graph-vis; find it from the canvas' DOM node
# and turn a node id's canvas position into pixels inside the iframe.
NODE_POSITION_JS = """(id) => {
  const isNet = (v) => v && typeof v.getPositions === 'function' && typeof v.canvasToDOM === 'function';
  const el = document.querySelector('div.vis-network');
  if (!el) return null;
  let net = null;
  for (let node = el; node && !net; node = node.parentElement) {
    const k = Object.keys(node).find(k => k.startsWith('__reactInternalInstance') || k.startsWith('__reactFiber'));
    if (!k) continue;
    for (let f = node[k]; f && !net; f = f.return) {
      if (f.stateNode && isNet(f.stateNode.Network)) net = f.stateNode.Network;
      for (let h = f.memoizedState; h && !net && typeof h === 'object' && 'next' in h; h = h.next) {
        const v = h.memoizedState;
        if (isNet(v)) net = v; else if (v && isNet(v.current)) net = v.current;
      }
    }
  }
  if (!net) return null;
  const p = net.getPositions([id])[id];
  if (!p) return null;
  const d = net.canvasToDOM(p);
  return {x: d.x, y: d.y};
}"""



@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    c = Conveyor(url)
    load_demo(c)
    c.close()
    with served_builder(url, tmp_path / "streamlit.log") as base:
        yield base


def _node_point(page, node_id: str) -> tuple[float, float]:
    """Page coordinates of a graph node, once vis-network has drawn it."""
    iframe = page.locator("iframe[title*='agraph']").first
    iframe.wait_for(timeout=30000)
    frame = iframe.element_handle().content_frame()
    frame.wait_for_selector("div.vis-network canvas", timeout=30000)
    pos = None
    for _ in range(100):
        pos = frame.evaluate(NODE_POSITION_JS, node_id)
        if pos:
            break
        time.sleep(0.1)
    assert pos, f"node {node_id} not found in the graph"
    box = iframe.bounding_box()
    return box["x"] + pos["x"], box["y"] + pos["y"]


def test_designer_click_on_a_stage_node_opens_its_editor_in_a_real_browser(app_url: str) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install the Debian package 'chromium' "
                    "(make test does this) — the browser test is never skipped.")
    from playwright.sync_api import expect, sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(app_url + "/")
            expect(page.get_by_role("heading", name="Funnel designer")).to_be_visible(timeout=30000)

            x, y = _node_point(page, "stage:qualification")
            page.mouse.click(x, y)
            expect(page.get_by_text("Stage editor")).to_be_visible(timeout=20000)
            expect(page.get_by_label("Stage name")).to_have_value("Qualification", timeout=10000)
            expect(page.get_by_text("Qualification → Proposal").filter(visible=True)).to_have_count(1)
            time.sleep(1)  # let the re-drawn graph settle for the screenshot
            page.screenshot(path=str(OUTPUT / "designer-stage-editor.png"), full_page=True)

            # A rule node leads to the rule editor with that rule preselected.
            x, y = _node_point(page, "rule:incoming_idle_24h")
            page.mouse.click(x, y)
            button = page.get_by_role("button", name="Edit conditions and actions")
            expect(button).to_be_visible(timeout=20000)
            button.click()
            expect(page.get_by_role("heading", name="Rule editor")).to_be_visible(timeout=20000)
            expect(page.get_by_text("Stage = Incoming lead and Hours since last manager activity ≥ 24")
                   ).to_be_visible(timeout=20000)
            page.screenshot(path=str(OUTPUT / "rule-editor.png"), full_page=True)
        finally:
            browser.close()
    shot = OUTPUT / "designer-stage-editor.png"
    assert shot.stat().st_size > 20_000

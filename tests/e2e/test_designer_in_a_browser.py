"""End to end in a real browser: `streamlit run builder/app.py` on localhost, driven by Playwright.

Uses Debian's Chromium (browsers cannot be downloaded here). Clicks a stage node on the Designer's
canvas (builder/canvas), checks that its editor opens, and leaves screenshots in ``test-output/``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli.demo_data import load_demo
from engine.core.conveyor import Conveyor
from tests.builder.support import served_builder, sign_in_in_browser
from tests.support.canvas import node_point

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.browser


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    c = Conveyor(url)
    load_demo(c)
    c.close()
    with served_builder(url, tmp_path / "streamlit.log") as base:
        yield base


def _node_point(page, node_id: str) -> tuple[float, float]:
    """Page coordinates of a node on the Designer's canvas, once vis-network has drawn it."""
    pos = node_point(page, node_id)
    return pos["x"], pos["y"]


def test_designer_click_on_a_stage_node_opens_its_editor_in_a_real_browser(app_url: str) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: install the Debian package 'chromium' "
            "(make test does this) — the browser test is never skipped."
        )
    from playwright.sync_api import expect, sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(app_url + "/")
            sign_in_in_browser(page)  # the demo owner
            expect(page.get_by_role("heading", name="Funnel designer")).to_be_visible(timeout=30000)

            x, y = _node_point(page, "stage:qualification")
            page.mouse.click(x, y)
            expect(page.get_by_text("Stage editor")).to_be_visible(timeout=20000)
            # The sample funnel names its stages per language: one box each.
            expect(page.get_by_role("textbox", name="Stage name (en)", exact=True)).to_have_value(
                "Qualification", timeout=10000
            )
            expect(page.get_by_role("textbox", name="Stage name (uk)", exact=True)).to_have_value(
                "Кваліфікація", timeout=10000
            )
            expect(page.get_by_text("Qualification → Proposal").filter(visible=True)).to_have_count(
                1
            )
            time.sleep(1)  # let the re-drawn graph settle for the screenshot
            page.screenshot(path=str(OUTPUT / "designer-stage-editor.png"), full_page=True)

            # A rule node leads to the rule editor with that rule preselected.
            x, y = _node_point(page, "rule:incoming_idle_24h")
            page.mouse.click(x, y)
            button = page.get_by_role("button", name="Edit conditions and actions")
            expect(button).to_be_visible(timeout=20000)
            button.click()
            expect(page.get_by_role("heading", name="Rule editor")).to_be_visible(timeout=20000)
            # That rule is the one open: its id, and its summary in the owner's words
            # (engine/document/summary.py) under the rule picker.
            expect(page.get_by_role("textbox", name="Id", exact=True)).to_have_value(
                "incoming_idle_24h", timeout=20000
            )
            expect(
                page.get_by_text(
                    "In Incoming lead, after 24 h without manager activity → tell the manager "
                    "“Lead {title} has had no activity for 24 hours” (high priority)",
                    exact=True,
                )
            ).to_be_visible(timeout=20000)
            page.screenshot(path=str(OUTPUT / "rule-editor.png"), full_page=True)
        finally:
            browser.close()
    shot = OUTPUT / "designer-stage-editor.png"
    assert shot.stat().st_size > 20_000

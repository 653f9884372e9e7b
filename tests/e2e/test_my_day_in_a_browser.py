"""A manager's morning in a real browser: sign in, land on My day, complete a task, open a deal card.

`streamlit run builder/app.py` on localhost over the demo database, driven by Playwright with Debian's
Chromium; screenshots of each step are left in ``test-output/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli.demo_data import load_demo
from engine.core.conveyor import Conveyor
from tests.builder.support import served_builder, sign_in_in_browser

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.browser


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    c = Conveyor(url)
    load_demo(c)
    c.close()
    with served_builder(url, tmp_path / "streamlit.log") as base:
        yield base, url


def test_a_manager_starts_the_day_completes_a_task_and_opens_a_deal(demo) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install the Debian package 'chromium'")
    from playwright.sync_api import expect, sync_playwright

    base, url = demo
    c = Conveyor(url)
    try:
        olena = next(m.id for m in c.deals.managers() if m.name == "Olena Kovalenko")
        day = c.day.of(olena)
    finally:
        c.close()
    task = (day.overdue + day.today)[0]
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base + "/")
            sign_in_in_browser(page, "Olena Kovalenko", "demo-olena")
            expect(page.get_by_role("heading", name="My day")).to_be_visible(timeout=30000)
            expect(page.get_by_text(task.title).first).to_be_visible(timeout=20000)
            expect(page.get_by_test_id("stMetricValue")).to_have_count(3, timeout=20000)
            page.screenshot(path=str(OUTPUT / "my-day.png"), full_page=True)

            box = page.locator(".st-key-day_done_" + str(task.id)).get_by_role("button")
            box.click()
            expect(page.get_by_text("Done: " + task.title).first).to_be_visible(timeout=20000)
            page.screenshot(path=str(OUTPUT / "my-day-after-done.png"), full_page=True)

            needs = day.deals[0]
            page.locator(f".st-key-day_open_d{needs.deal_id}").get_by_role("button").click()
            expect(page.get_by_role("heading", name="Deals")).to_be_visible(timeout=30000)
            expect(
                page.get_by_role("heading", name=needs.deal_title or needs.deal_key)
            ).to_be_visible(timeout=30000)
            page.get_by_role("tab", name="Actions fired").click()
            page.screenshot(path=str(OUTPUT / "deal-card-why.png"), full_page=True)
        finally:
            browser.close()
    c = Conveyor(url)
    try:
        assert next(t for t in c.queries.tasks(task.deal_id) if t.id == task.id).status == "done"
    finally:
        c.close()

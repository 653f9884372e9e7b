"""The Designer's canvas in a real browser: drag, connect, insert and delete, checked in `conveyor export`.

`streamlit run builder/app.py` on a fresh demo database, Debian's Chromium driven by Playwright with the
real mouse. Every step leaves a screenshot in ``test-output/canvas-*.png``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli.demo_data import load_demo
from engine.core.conveyor import Conveyor
from tests.builder.support import served_builder, sign_in_in_browser
from tests.support.canvas import CHROMIUM, drag, edge_point, launch, node_point, settled
from tests.support.processes import cli_env

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
pytestmark = pytest.mark.browser


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path / 'canvas.db'}"
    c = Conveyor(url)
    load_demo(c)
    c.close()
    with served_builder(url, tmp_path / "streamlit.log") as base:
        yield url, base


def export(url: str, funnel: str = "techflow") -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--db", url, "export", funnel],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def stage(doc: dict, sid: str) -> dict:
    return next(s for s in doc["stages"] if s["id"] == sid)


def transitions(doc: dict) -> set[tuple[str, str]]:
    return {(t["from"], t["to"]) for t in doc["transitions"]}


def shot(page, name: str) -> None:
    settled(page)
    page.screenshot(path=str(OUTPUT / f"canvas-{name}.png"), full_page=True)


def saved(page, text: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_text(text).first).to_be_visible(timeout=30000)


def test_owner_drags_connects_inserts_and_deletes_on_the_canvas(demo: tuple[str, str]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: install the Debian package 'chromium' — never skipped."
        )
    from playwright.sync_api import expect, sync_playwright

    url, base = demo
    OUTPUT.mkdir(exist_ok=True)
    before = export(url)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/designer")
            sign_in_in_browser(page)  # the demo owner
            expect(page.get_by_role("heading", name="Funnel designer")).to_be_visible(timeout=30000)
            paid = node_point(page, "stage:paid")
            shot(page, "1-demo")

            # 1. Drag Paid 200 px to the right; its rule ("Paid: start Project work") goes along.
            rule_before = node_point(page, "rule:paid_start_project")
            drag(page, (paid["x"], paid["y"]), (paid["x"] + 200, paid["y"]))
            saved(page, "Moved stage Paid — saved as version")
            shot(page, "2-paid-dragged")
            page.reload()  # the session cookie keeps the owner signed in
            expect(page.get_by_role("heading", name="Funnel designer")).to_be_visible(timeout=30000)
            after_reload = node_point(page, "stage:paid")
            doc = export(url)
            moved_x = stage(doc, "paid")["position"]["x"]
            expected = stage(before, "paid")["position"]["x"] + 200 / paid["scale"]
            assert abs(moved_x - expected) < 3, (moved_x, expected)
            assert stage(doc, "paid")["position"]["y"] == pytest.approx(
                stage(before, "paid")["position"]["y"], abs=3
            )
            assert after_reload["cx"] == pytest.approx(
                moved_x, abs=0.5
            )  # the reloaded canvas draws it there
            rule = next(r for r in doc["rules"] if r["id"] == "paid_start_project")
            assert rule["position"]["x"] == pytest.approx(
                rule_before["cx"] + 200 / paid["scale"], abs=3
            )
            shot(page, "3-after-reload")

            # 2. Draw a transition: from Cold call's ● handle to Proposal (a cold lead comes back ready).
            assert ("cold_call", "proposal") not in transitions(doc)
            start = node_point(page, "stage:cold_call")
            page.mouse.move(start["x"], start["y"])
            time.sleep(0.3)  # hovering shows the handle
            handle = node_point(page, "stage:cold_call", "handle")
            target = node_point(page, "stage:proposal")
            drag(page, (handle["x"], handle["y"]), (target["x"], target["y"]), steps=20)
            saved(page, "Allowed Cold call (90 days) → Proposal — saved as version")
            shot(page, "4-transition-drawn")
            assert ("cold_call", "proposal") in transitions(export(url))

            # 3. Select that transition by clicking its arrow, then Delete.
            mid = edge_point(page, "t:cold_call>proposal")
            page.mouse.click(mid["x"], mid["y"])
            expect(page.locator("[data-testid=canvas-delete-edge]")).to_be_enabled(timeout=10000)
            shot(page, "5-transition-selected")
            page.keyboard.press("Delete")
            saved(page, "Removed the transition Cold call (90 days) → Proposal — saved as version")
            assert ("cold_call", "proposal") not in transitions(export(url))

            # 4. Insert "Демо-дзвінок" after Qualification: the id comes from the name.
            q = node_point(page, "stage:qualification")
            page.mouse.click(q["x"], q["y"])
            expect(page.get_by_text("Stage editor")).to_be_visible(timeout=20000)
            page.get_by_text("Insert a stage after Qualification").click()
            name = page.get_by_role("textbox", name="New stage name")
            name.fill("Демо-дзвінок")
            name.press("Tab")
            expect(page.get_by_role("textbox", name="New stage id")).to_have_value(
                "demo_dzvinok", timeout=10000
            )
            shot(page, "6-insert-form")
            page.get_by_role("button", name="Insert stage").click()
            saved(page, "Inserted stage Демо-дзвінок after Qualification — saved as version")
            doc = export(url)
            t = transitions(doc)
            assert ("qualification", "demo_dzvinok") in t and ("demo_dzvinok", "proposal") in t
            assert ("qualification", "proposal") not in t
            assert ("qualification", "cold_call") in t and ("demo_dzvinok", "cold_call") in t
            ids = [s["id"] for s in doc["stages"]]
            assert ids.index("qualification") < ids.index("demo_dzvinok") < ids.index("proposal")
            # The row was laid out again: the new stage sits where Proposal was, Proposal moved right.
            assert stage(doc, "demo_dzvinok")["position"] == stage(before, "proposal")["position"]
            assert (
                stage(doc, "proposal")["position"]["x"] > stage(before, "proposal")["position"]["x"]
            )
            node_point(page, "stage:demo_dzvinok")
            shot(page, "7-stage-inserted")
            assert not errors, errors
        finally:
            browser.close()

"""The signed-in session in a real browser (Debian's Chromium through Playwright) over `streamlit run`:
a reload keeps the user signed in (the session cookie), sign-out ends it for good (a reload shows the
form), and a viewer's Designer canvas is read-only (a drag changes nothing, the bar says so). Screenshots
in test-output/session-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.cookie import NAME as COOKIE
from engine.cli.demo_data import load_demo
from engine.core.conveyor import Conveyor
from tests.builder.support import served_builder, sign_in_in_browser
from tests.support.canvas import CHROMIUM, drag, launch, node_point, settled

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
pytestmark = pytest.mark.browser


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path / 'session.db'}"
    c = Conveyor(url)
    load_demo(c)
    c.close()
    with served_builder(url, tmp_path / "streamlit.log") as base:
        yield url, base


def _shot(page, name: str) -> None:
    settled(page, 0.7)
    page.screenshot(path=str(OUTPUT / f"session-{name}.png"), full_page=True)


def _cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == COOKIE), None)


def test_a_reload_keeps_the_session_and_sign_out_ends_it(demo: tuple[str, str]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install the Debian package 'chromium'")
    from playwright.sync_api import expect, sync_playwright

    _url, base = demo
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 950})
            page = context.new_page()
            page.goto(base + "/")
            sign_in_in_browser(page)  # the demo owner
            designer = page.get_by_role("heading", name="Funnel designer")
            expect(designer).to_be_visible(timeout=30000)
            page.wait_for_function(
                f"document.cookie.includes('{COOKIE}=')", timeout=30000
            )  # written by the page once signed in
            cookie = _cookie(context)
            assert cookie is not None and cookie["sameSite"] == "Strict"
            assert not cookie["secure"]  # plain http on localhost; Secure over https
            assert cookie["expires"] > 0  # it lasts the session's lifetime, not forever
            _shot(page, "1-signed-in")
            assert page.get_by_text("Component Error").count() == 0  # the cookie writer ran clean

            # A reload is a new Streamlit session: still signed in, on the same page.
            page.reload()
            expect(designer).to_be_visible(timeout=30000)
            assert page.get_by_role("heading", name="Sign in to Conveyor").count() == 0
            expect(page.get_by_text("Signed in as owner").first).to_be_visible(timeout=10000)
            _shot(page, "2-after-reload")

            # A second tab of the same browser is signed in too.
            other = context.new_page()
            other.goto(base + "/deals")
            expect(other.get_by_role("heading", name="Deals")).to_be_visible(timeout=30000)
            other.close()

            # Sign-out: the form, the cookie gone, and a reload shows the form again.
            stolen = cookie["value"]
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("heading", name="Sign in to Conveyor")).to_be_visible(
                timeout=30000
            )
            page.wait_for_function(f"!document.cookie.includes('{COOKIE}=')", timeout=30000)
            page.reload()
            expect(page.get_by_role("heading", name="Sign in to Conveyor")).to_be_visible(
                timeout=30000
            )
            assert page.get_by_role("heading", name="Funnel designer").count() == 0
            _shot(page, "3-signed-out-and-reloaded")

            # A copy of the old cookie resumes nothing: the session ended on the server.
            thief = browser.new_context(viewport={"width": 1400, "height": 950})
            thief.add_cookies([{**cookie, "value": stolen}])
            stranger = thief.new_page()
            stranger.goto(base + "/designer")
            expect(stranger.get_by_role("heading", name="Sign in to Conveyor")).to_be_visible(
                timeout=30000
            )
            assert stranger.get_by_role("heading", name="Funnel designer").count() == 0
            thief.close()
        finally:
            browser.close()


def test_a_viewer_cannot_change_the_designer_canvas(demo: tuple[str, str]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install the Debian package 'chromium'")
    from playwright.sync_api import expect, sync_playwright

    url, base = demo
    OUTPUT.mkdir(exist_ok=True)
    c = Conveyor(url)
    before = [(v.version, v.active) for v in c.versions("techflow")]
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/designer")
            sign_in_in_browser(page, "viewer", "demo-viewer")
            expect(page.get_by_role("heading", name="Funnel designer")).to_be_visible(timeout=30000)
            paid = node_point(page, "stage:paid")
            root = page.locator(".cv-root")
            expect(root).to_have_attribute("data-readonly", "true", timeout=10000)
            expect(page.locator(".cv-hint")).to_contain_text("Read only", timeout=10000)
            expect(page.get_by_text("Read-only canvas").first).to_be_visible()
            assert not page.locator("[data-testid=canvas-connect]").is_visible()
            assert not page.locator("[data-testid=canvas-delete-edge]").is_visible()

            drag(page, (paid["x"], paid["y"]), (paid["x"] + 200, paid["y"] + 80))
            settled(page, 1.5)
            after = node_point(page, "stage:paid")
            assert (after["cx"], after["cy"]) == (paid["cx"], paid["cy"])  # did not move
            handle = node_point(page, "stage:paid", "handle")
            target = node_point(page, "stage:qualification")
            drag(page, (handle["x"], handle["y"]), (target["x"], target["y"]), steps=20)
            settled(page, 1.5)
            assert [(v.version, v.active) for v in c.versions("techflow")] == before
            assert page.get_by_text("saved as version").count() == 0
            # A click still selects a stage, to read it (the drags above only panned the view).
            page.locator("[data-testid=canvas-fit]").click()
            settled(page, 1)
            paid = node_point(page, "stage:paid")
            page.mouse.click(paid["x"], paid["y"])
            # ... shown as text to read (no boxes that look editable).
            expect(page.get_by_role("heading", name="Paid")).to_be_visible(timeout=30000)
            expect(page.get_by_text("Deals may come from:")).to_be_visible()
            assert page.get_by_role("textbox", name="Stage name (en)").count() == 0
            _shot(page, "4-viewer-read-only-canvas")
            assert not errors, errors
            assert page.get_by_text("Component Error").count() == 0
        finally:
            browser.close()
            c.close()

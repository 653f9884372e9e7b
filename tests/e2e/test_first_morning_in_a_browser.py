"""An owner's first morning with five managers, in a real browser (Debian's Chromium through Playwright)
on a fresh demo database: the sign-in form and nothing else; wrong passwords refused, five make the next
attempt wait; the owner edits a rule; a manager sees their day, completes a task, has no Designer (not
in the menu, its address refuses); the language switch turns the interface Ukrainian. A screenshot of
each step is saved under test-output/first-morning-*.png."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli.demo_data import load_demo
from engine.core.conveyor import Conveyor
from tests.builder.support import served_builder
from tests.support.processes import cli_env

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.browser
MANAGER, MANAGER_PASSWORD = "Olena Kovalenko", "demo-olena"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path / 'morning.db'}"
    c = Conveyor(url)
    load_demo(c)
    c.close()
    with served_builder(url, tmp_path / "streamlit.log") as base:
        yield url, base


def _shot(page, name: str) -> None:
    page.wait_for_timeout(500)  # let Streamlit finish drawing the rerun for the picture
    page.screenshot(path=str(OUTPUT / f"first-morning-{name}.png"), full_page=True)


def _submit(page, name: str, password: str) -> None:
    page.get_by_role("textbox", name="User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _wait_for_failures(c: Conveyor, n: int, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while len(c.audit.entries(kind="sign_in_failed")) < n:
        if time.monotonic() > deadline:
            pytest.fail(f"the builder did not record sign-in failure {n}")
        time.sleep(0.2)


def test_first_morning_in_a_browser(demo: tuple[str, str]) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install the Debian package 'chromium'")
    from playwright.sync_api import expect, sync_playwright

    url, base = demo
    OUTPUT.mkdir(exist_ok=True)
    c = Conveyor(url)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            # 1. The first page is the sign-in form, and no funnel data.
            page.goto(base + "/")
            expect(page.get_by_role("heading", name="Sign in to Conveyor")).to_be_visible(
                timeout=30000
            )
            body = page.locator("body").inner_text()
            for secret in ("Acme Logistics", "Funnel designer", "Qualification", "techflow"):
                assert secret not in body
            _shot(page, "1-sign-in")

            # 2. A wrong password is refused; the fifth makes the next attempt wait.
            _submit(page, "owner", "not the password")
            expect(page.get_by_text("Wrong user name or password.")).to_be_visible(timeout=20000)
            _shot(page, "2-wrong-password")
            for attempt in range(2, 6):
                _submit(page, "owner", "not the password")
                _wait_for_failures(c, attempt)  # each attempt is one rerun, seen by the database
            expect(page.get_by_text("wait 30 s before the next attempt")).to_be_visible(
                timeout=20000
            )
            _submit(page, "owner", "demo-owner")  # the right password, too early
            expect(page.get_by_text("Too many failed sign-ins for this account")).to_be_visible(
                timeout=20000
            )
            _shot(page, "3-throttled")
            unlocked = subprocess.run(
                [sys.executable, "-m", "engine.cli", "--db", url, "users", "unlock", "--all"],
                cwd=ROOT,
                env=cli_env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert unlocked.returncode == 0, unlocked.stderr

            # 3. The owner signs in and edits a rule: it is saved as a version by "owner".
            _submit(page, "owner", "demo-owner")
            expect(page.get_by_role("heading", name="Funnel designer")).to_be_visible(timeout=30000)
            before = len(c.versions("techflow"))
            page.get_by_role("link", name="Rule editor").click()
            expect(page.get_by_role("heading", name="Rule editor")).to_be_visible(timeout=30000)
            page.get_by_text("Enabled", exact=True).first.click()
            page.get_by_role("button", name="💾 Save version").first.click()
            expect(page.get_by_text("Saved version").first).to_be_visible(timeout=30000)
            versions = c.versions("techflow")
            newest = max(versions, key=lambda v: v.version)
            assert len(versions) == before + 1 and (newest.author, newest.active) == ("owner", True)
            _shot(page, "4-owner-edited-a-rule")

            # 4. A manager signs in, sees their day and completes a task.
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("heading", name="Sign in to Conveyor")).to_be_visible(
                timeout=30000
            )
            _submit(page, MANAGER, MANAGER_PASSWORD)
            expect(page.get_by_role("heading", name="My day")).to_be_visible(timeout=30000)
            _shot(page, "5-manager-day")
            done_before = [
                e for e in c.audit.entries(actor_name=MANAGER) if e.kind == "task_completed"
            ]
            page.get_by_role("button", name="Done").first.click()
            page.wait_for_timeout(1500)
            done_after = [
                e for e in c.audit.entries(actor_name=MANAGER) if e.kind == "task_completed"
            ]
            assert len(done_after) == len(done_before) + 1
            _shot(page, "6-manager-completed-a-task")

            # 5. No Designer in the manager's menu, and its address refuses.
            assert page.get_by_role("link", name="Designer").count() == 0
            assert page.get_by_role("link", name="Rule editor").count() == 0
            page.goto(base + "/designer")  # a new Streamlit session, still signed in (the cookie)
            expect(page.get_by_text("The manager role may not open Designer.")).to_be_visible(
                timeout=30000
            )
            assert page.get_by_role("heading", name="Funnel designer").count() == 0
            _shot(page, "7-manager-designer-refused")

            # 6. The language switch shows the Ukrainian interface.
            page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
            page.get_by_role("option", name="Українська").click()
            expect(page.get_by_role("link", name="Угоди")).to_be_visible(timeout=30000)
            _shot(page, "8-ukrainian")
        finally:
            browser.close()
            c.close()

"""Helpers shared by the builder's AppTest suites: one app session that switches pages, widget lookup,
error text, and Markdown-escaped text read back as typed. The demo-database fixtures are in conftest."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def _script(root: str) -> None:
    # Runs inside AppTest: the page module is imported from the project, as the router does.
    import importlib
    import sys

    import streamlit as st

    if root not in sys.path:
        sys.path.insert(0, root)
    importlib.import_module(f"builder.views.{st.session_state.get('_page', 'designer')}").render()


def session_app(page: str = "designer", role: str = "owner") -> AppTest:
    """One session that renders the page named in ``session_state['_page']`` (session state persists),
    signed in as the demo user of ``role``."""
    at = AppTest.from_function(_script, args=(str(ROOT),), default_timeout=30)
    at.session_state["_page"] = page
    return sign_in(at, role)


def go(at: AppTest, page: str) -> AppTest:
    at.session_state["_page"] = page
    return at.run()


def by_label(widgets, label: str):
    found = [w for w in widgets if w.label == label]
    assert found, f"no widget labelled {label!r}; have {[w.label for w in widgets]}"
    return found[0]


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def plain(markdown: str) -> str:
    """Page text without the backslashes that keep user text from being read as Markdown."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served_builder(db_url: str, log_path: Path, start_timeout: float = 40) -> Iterator[str]:
    """`streamlit run builder/app.py` on a free localhost port over ``db_url``; yields its base URL.

    Fails the test with the server's log if it exits or does not answer its health check in time.
    """
    import pytest

    port = _free_port()
    env = {**os.environ, "CONVEYOR_DB": db_url, "PYTHONPATH": str(ROOT)}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "builder" / "app.py"),
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("streamlit did not start:\n" + log_path.read_text())
                time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- signing in ------------------------------------------------------------------------------------
#: The demo user of each role (engine.cli.demo_data.DEMO_USERS) a test signs in as by default.
DEMO_USER = {"owner": "owner", "manager": "Olena Kovalenko", "viewer": "viewer"}


def signed_in(role: str = "owner", name: str | None = None, *, db_url: str | None = None):
    """A session (``engine.core.users.SignedIn``) of a user with ``role`` on the test's database
    (``CONVEYOR_DB``): the demo user of that role, or ``name``; a user that does not exist yet is added
    (without a password: nothing is hashed)."""
    from engine.core.conveyor import Conveyor
    from engine.core.users import SignedIn
    from engine.errors import NotFound

    name = name or DEMO_USER[role]
    c = Conveyor(db_url or os.environ["CONVEYOR_DB"])
    try:
        try:
            info = c.users.get(name)
        except NotFound:
            info = c.users.add(name, role, None, actor="test")
        now = c.clock.now()
        users = c.users.list()
        manager_id = (
            next((m.id for m in c.deals.managers() if m.name == info.name), None)
            if info.role.value == "manager"
            else None
        )
        assert any(u.name == info.name for u in users)
        return SignedIn(info.name, info.role, manager_id, info.sees_team, now, now)
    finally:
        c.close()


def sign_in(at: AppTest, role: str = "owner", name: str | None = None) -> AppTest:
    """Sign ``at``'s session in as a user with ``role`` (see ``signed_in``); returns ``at``.

    A test of a database that cannot be opened (or no ``CONVEYOR_DB``) gets a session all the same:
    pages do not check it again (the router does), so they show the database's trouble."""
    from datetime import UTC, datetime

    from builder.session import KEY
    from engine.core.access import Role
    from engine.core.users import SignedIn

    try:
        at.session_state[KEY] = signed_in(role, name)
    except Exception:  # noqa: BLE001 - an unusable database: a session that names the user only
        now = datetime.now(UTC)
        at.session_state[KEY] = SignedIn(name or DEMO_USER[role], Role(role), None, True, now, now)
    return at


def sign_in_in_browser(page, name: str = "owner", password: str = "demo-owner") -> None:
    """Fill the builder's sign-in form in a Playwright ``page`` showing it, and wait for it to go and
    for the session cookie.

    The page writes the cookie from JavaScript after it draws (``builder.cookie``): under load a page
    shows before it, and a reload or another address opened before the write is a new session without
    the cookie, the sign-in form again.
    """
    from builder.cookie import NAME as COOKIE

    page.get_by_role("textbox", name="User name").wait_for(timeout=30000)
    page.get_by_role("textbox", name="User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Sign in to Conveyor").wait_for(
        state="detached", timeout=30000
    )
    page.wait_for_function(f"document.cookie.includes('{COOKIE}=')", timeout=30000)
    wait_until_idle(page)


def wait_until_idle(page, quiet: float = 0.5, timeout: float = 30) -> None:
    """Wait until no script run has been going for ``quiet`` seconds (Streamlit's "Running" icon is
    gone): a run still drawing can insert an element above the one a test is about to drag or click
    (the save bar above the canvas), moving it under the mouse."""
    running = page.locator('[data-testid="stStatusWidgetRunningIcon"]')
    deadline = time.monotonic() + timeout
    calm_since = None
    while time.monotonic() < deadline:
        if running.count():
            calm_since = None
        elif calm_since is None:
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet:
            return
        time.sleep(0.05)
    raise AssertionError(f"the page was still running a script after {timeout:g} s")

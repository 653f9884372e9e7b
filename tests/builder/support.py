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


def session_app(page: str = "designer") -> AppTest:
    """One session that renders the page named in ``session_state['_page']`` (session state persists)."""
    at = AppTest.from_function(_script, args=(str(ROOT),), default_timeout=30)
    at.session_state["_page"] = page
    return at


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

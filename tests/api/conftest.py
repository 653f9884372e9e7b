"""A real uvicorn server on 127.0.0.1 serving the API on the test's backend, and httpx clients.

The server runs in a thread of the test process on a free port (``uvicorn.Server``), on its own
Conveyor over the database URL, with the system clock; tests reach it only through HTTP.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from engine.api.app import create_app
from engine.core.conveyor import Conveyor
from tests.conftest import SAMPLE_RULES
from tests.support.processes import ROOT, cli_env, free_port, listening, wait_until

SECRET_KEY = "test-secret-key-for-the-api-suite"


@dataclass
class Api:
    url: str
    db: str
    keys: dict[str, str] = field(default_factory=dict)

    def client(
        self, role: str | None = "owner", *, headers: dict[str, str] | None = None
    ) -> httpx.Client:
        auth = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return httpx.Client(
            base_url=self.url,
            headers={**auth, **(headers or {})},
            timeout=30,
            follow_redirects=False,
        )


@pytest.fixture
def api(backend: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", SECRET_KEY)
    setup = Conveyor(backend)
    setup.load_rules_dir(SAMPLE_RULES)
    setup.add_manager("Olena", "+380501110001")
    setup.add_manager("Petro", "+380501110002")
    keys = {
        role: setup.api_keys.create(f"{role}-key", role)[1]
        for role in ("owner", "manager", "integration", "viewer")
    }
    setup.close()
    port = free_port()
    monkeypatch.setenv("CONVEYOR_PUBLIC_URL", f"http://127.0.0.1:{port}")
    with serving(create_app(backend), port) as url:
        yield Api(url, backend, keys)


@contextmanager
def serving(app: Any, port: int | None = None, **config: Any) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 in a thread of this process, until the block ends: its URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, **config
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def crashing_server(
    api: Api, crash_before: str, log: Path
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A second API server on ``api``'s database, in a subprocess that SIGKILLs itself just before it
    runs an SQL statement matching ``crash_before`` (``tests.support.crashing_api``): (URL, process)."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.crashing_api",
                "--db",
                api.db,
                "--port",
                str(port),
            ]
            + ["--crash-before", crash_before],
            cwd=ROOT,
            env=cli_env(CONVEYOR_SECRET_KEY=SECRET_KEY, CONVEYOR_PUBLIC_URL=api.url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: proc.poll() is not None or listening(port), 60, "the crashing server", log
        )
        assert proc.poll() is None, log.read_text(errors="replace")
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

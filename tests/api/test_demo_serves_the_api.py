"""``conveyor demo`` (what ``make demo`` runs) starts the API beside the engine and prints its address
and a demo key that works: a real demo process, a real request with the printed key."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx

from tests.support.processes import children, free_port, listening, start_cli, stop, wait_until


def test_demo_prints_the_api_address_and_a_demo_key_that_works(tmp_path: Path) -> None:
    api_port = free_port()
    log = tmp_path / "demo.log"
    proc = start_cli(
        "--db",
        f"sqlite:///{tmp_path / 'demo.db'}",
        "demo",
        "--no-builder",
        "--api-port",
        str(api_port),
        log=log,
    )
    kids: list[int] = []
    try:
        wait_until(
            lambda: listening(api_port) or proc.poll() is not None, 240, "the demo's API", log
        )
        assert proc.poll() is None, log.read_text()
        kids = children(proc.pid)
        lines = log.read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("api: "))
        address = re.match(r"api: (http://localhost:\d+)", lines[at])
        assert address and address.group(1) == f"http://localhost:{api_port}"
        key = lines[at + 1].strip()
        assert key.startswith("cv_")
        url = f"http://127.0.0.1:{api_port}"
        status = httpx.get(f"{url}/api/v1/status", headers={"Authorization": f"Bearer {key}"})
        assert status.status_code == 200, status.text
        deals = httpx.get(f"{url}/api/v1/tasks", headers={"Authorization": f"Bearer {key}"})
        assert deals.status_code == 200 and deals.json()["items"]  # the demo's deals have tasks
        assert httpx.get(f"{url}/api/v1/status").status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0, log.read_text()
    finally:
        stop(proc, kids)

"""Throughput of the HTTP API: ``conveyor api`` (uvicorn) on a temporary SQLite file on 127.0.0.1, and
an httpx client in a separate process recording declared events for a few seconds.

Reported by ``conveyor bench`` (``api_events_per_s``, ``api_p99_ms``), never asserted by a test.
Run alone: ``python -m benchmarks.api [SECONDS]``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEALS = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client(url: str, key: str, seconds: float) -> dict[str, Any]:
    """Record ``client_replied`` on the bench's deals round-robin for ``seconds``; rate and latencies."""
    import httpx

    latencies: list[float] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        end = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < end:
            start = time.perf_counter()
            r = c.post(f"/api/v1/deals/B-{i % DEALS}/events", json={"name": "client_replied"})
            latencies.append(time.perf_counter() - start)
            if r.status_code != 200:
                raise RuntimeError(f"the API answered {r.status_code}: {r.text[:200]}")
            i += 1
    latencies.sort()
    total = sum(latencies)
    return {
        "api_events_per_s": len(latencies) / total if total else 0.0,
        "api_p50_ms": latencies[len(latencies) // 2] * 1000,
        "api_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "api_requests": len(latencies),
    }


def bench_api(seconds: float = 5, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    from engine.core.conveyor import Conveyor
    from engine.paths import SAMPLE_RULES

    with tempfile.TemporaryDirectory(prefix="conveyor-api-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'api.db'}"
        c = Conveyor(url)
        c.load_rules_dir(SAMPLE_RULES)
        c.add_manager("Olena")
        for i in range(DEALS):
            c.create_deal("techflow", key=f"B-{i}", title=f"Bench {i}")
        c.dispatcher.run_until_idle()
        key = c.api_keys.create("bench", "integration")[1]
        c.close()
        port = _free_port()
        env = {**os.environ, "CONVEYOR_DB": url, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "api", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("conveyor api did not start") from None
                    time.sleep(0.1)
            log(f"api: recording events over HTTP for {seconds:g} s")
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.api",
                    "--client",
                    f"http://127.0.0.1:{port}",
                    key,
                    str(seconds),
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=seconds + 120,
            )
            if out.returncode != 0:
                raise RuntimeError(
                    out.stderr.strip().splitlines()[-1]
                    if out.stderr.strip()
                    else "the client failed"
                )
            return dict(json.loads(out.stdout))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        print(json.dumps(client(sys.argv[2], sys.argv[3], float(sys.argv[4]))))
    else:
        print(
            json.dumps(
                bench_api(float(sys.argv[1]) if len(sys.argv) > 1 else 5, log=print), indent=2
            )
        )

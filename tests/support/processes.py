"""Helpers for tests that start real ``conveyor`` processes: free ports, listening sockets, child pids."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return {**env, "PYTHONPATH": str(ROOT), "CONVEYOR_TZ": "UTC", **extra}


def start_cli(*args: str, log: Path) -> subprocess.Popen:
    """``python -m engine.cli ARGS`` from this checkout, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "engine.cli", *args],
            cwd=ROOT,
            env=cli_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def listening(port: int) -> list[str]:
    """Local addresses with a TCP socket listening on ``port`` (``ss -ltn``), e.g. ['127.0.0.1']."""
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()]


def wait_until(
    check: Callable[[], object], timeout: float, what: str, log: Path | None = None
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    detail = f"\n--- output ---\n{log.read_text(errors='replace')}" if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{detail}")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped does not count: it holds no port and runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_free(port: int) -> bool:
    for host in ("127.0.0.1", "0.0.0.0"):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
                s.listen()
            except OSError:
                return False
    return True


def stop(proc: subprocess.Popen, leftovers: list[int] | None = None) -> None:
    """Clean-up after a test: kill ``proc`` and any of ``leftovers`` (its children) still running."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)
    for pid in leftovers or []:
        if alive(pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass

"""Until sign-in exists, ``conveyor builder`` and ``demo`` serve this machine only unless ``--host`` says otherwise,
and a port already in use is refused before anything starts.

Real processes: a ``conveyor builder`` on a free port, and what ``ss -ltn`` says it listens on.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import pytest

from tests.support.processes import (
    ROOT,
    children,
    cli_env,
    free_port,
    listening,
    start_cli,
    stop,
    wait_until,
)


def test_builder_listens_on_127_0_0_1_only_by_default(tmp_path):
    port = free_port()
    log = tmp_path / "builder.log"
    proc = start_cli(
        "--db", f"sqlite:///{tmp_path / 'c.db'}", "builder", "--port", str(port), log=log
    )
    kids: list[int] = []
    try:
        addresses = wait_until(
            lambda: listening(port), 90, f"the builder to listen on port {port}", log
        )
        kids += children(proc.pid)
        assert addresses == ["127.0.0.1"], addresses
        assert "Network URL" not in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            stop(proc, kids)


def test_builder_host_option_chooses_the_interface(tmp_path):
    port = free_port()
    log = tmp_path / "builder.log"
    proc = start_cli(
        "--db",
        f"sqlite:///{tmp_path / 'c.db'}",
        "builder",
        "--port",
        str(port),
        "--host",
        "0.0.0.0",
        log=log,
    )
    kids: list[int] = []
    try:
        addresses = wait_until(
            lambda: listening(port), 90, f"the builder to listen on port {port}", log
        )
        kids += children(proc.pid)
        assert addresses in (["0.0.0.0"], ["*"]), addresses
        assert (
            "reverse proxy with TLS" in log.read_text()
        )  # it warns that passwords would now cross the network in plain HTTP
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            stop(proc, kids)


@pytest.mark.parametrize("command", ["builder", "demo"])
def test_help_says_the_builder_serves_this_machine_only_and_names_host(command):
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", command, "--help"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    text = re.sub(
        r"-\s+", "-", " ".join(result.stdout.split())
    )  # click wraps "sign-in" at its hyphen
    assert "--host ADDRESS" in text and "[default: 127.0.0.1]" in text
    assert "this machine only" in text and "0.0.0.0" in text
    assert "reverse proxy with TLS" in text


@pytest.mark.parametrize("command", ["demo", "builder"])
def test_a_busy_port_is_refused_before_anything_starts(tmp_path, command):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "--db",
                f"sqlite:///{tmp_path / 'c.db'}",
                command,
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        f"port {port} is already in use — run `conveyor {command} --port {port + 1}`"
        " (or stop what uses it)"
    ) in result.stderr
    assert "builder: http://" not in result.stdout
    assert not (tmp_path / "c.db").exists()  # nothing was started or loaded

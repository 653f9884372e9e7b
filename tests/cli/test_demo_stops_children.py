"""``conveyor demo`` and ``conveyor builder`` stop every process they started, and the port is free after.

Real processes: ``demo`` on a free port with a temporary database (it starts an engine and a
Streamlit server), then SIGTERM or SIGINT to ``demo`` alone; or ``builder`` and SIGTERM; or ``demo``
killed outright, whose children must still die with it.
"""

from __future__ import annotations

import signal

import pytest

from tests.support.processes import (
    alive,
    children,
    free_port,
    listening,
    port_free,
    start_cli,
    stop,
    wait_until,
)


def _start_demo(tmp_path, port: int):
    log = tmp_path / "demo.log"
    proc = start_cli(
        "--db",
        f"sqlite:///{tmp_path / 'demo.db'}",
        "demo",
        "--port",
        str(port),
        "--tick-seconds",
        "2",
        log=log,
    )
    wait_until(
        lambda: listening(port) or proc.poll() is not None, 240, "the demo's builder to listen", log
    )
    assert proc.poll() is None, log.read_text()
    kids = wait_until(
        lambda: len(children(proc.pid)) >= 2 and children(proc.pid),
        60,
        "the engine and the builder",
        log,
    )
    return proc, kids, log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_demo_stops_the_engine_and_the_builder_and_frees_the_port(tmp_path, sig):
    port = free_port()
    proc, kids, log = _start_demo(tmp_path, port)
    try:
        proc.send_signal(sig)  # to demo only, not to its children
        assert proc.wait(90) == 0, log.read_text()
        wait_until(lambda: not any(alive(pid) for pid in kids), 30, f"children {kids} to end", log)
        assert [pid for pid in kids if alive(pid)] == []
        assert listening(port) == []
        assert port_free(port)
    finally:
        stop(proc, kids)


def test_demo_killed_outright_still_takes_its_children_with_it(tmp_path):
    port = free_port()
    proc, kids, log = _start_demo(tmp_path, port)
    try:
        proc.kill()  # no handler runs: the children must notice by themselves (parent-death signal)
        proc.wait(30)
        wait_until(
            lambda: not any(alive(pid) for pid in kids), 60, f"orphaned children {kids} to end", log
        )
        wait_until(lambda: port_free(port), 30, f"port {port} to be free", log)
    finally:
        stop(proc, kids)


def test_sigterm_to_builder_stops_its_streamlit_server_and_frees_the_port(tmp_path):
    port = free_port()
    log = tmp_path / "builder.log"
    proc = start_cli(
        "--db", f"sqlite:///{tmp_path / 'c.db'}", "builder", "--port", str(port), log=log
    )
    kids: list[int] = []
    try:
        wait_until(lambda: listening(port), 90, "the builder to listen", log)
        kids += children(proc.pid)
        assert kids, "the builder runs Streamlit as a child process"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
        wait_until(lambda: not any(alive(pid) for pid in kids), 30, f"children {kids} to end", log)
        assert port_free(port)
    finally:
        stop(proc, kids)

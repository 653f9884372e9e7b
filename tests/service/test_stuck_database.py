"""A database that stops answering gives a clear error within its timeouts, and SIGTERM still stops the engine.

Real pieces only: a TCP listener on 127.0.0.1 that accepts connections and never answers (given as a
``postgresql+psycopg`` URL), a TCP proxy in front of the real PostgreSQL that can be frozen mid-run,
and a real PostgreSQL table held by ``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`` in another session.
The bounds below are generous: they tell "answers" from "hangs", not how fast.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.engine_world import ROOT, seed, start_engine, wait_for

pytestmark = pytest.mark.slow

PASSWORD = "s3cret-pw-42"


class SilentDatabase:
    """Accepts TCP connections on 127.0.0.1 and never says a word (a hung server, a black-holed proxy)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.url = f"postgresql+psycopg://conveyor:{PASSWORD}@127.0.0.1:{self.port}/conveyor"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.accepted:
            c.close()


class FreezableProxy:
    """Forwards 127.0.0.1:<port> to a real PostgreSQL until ``freeze()``: then it holds every byte, forever."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(client)
            if self.frozen.is_set():
                continue  # accepted, never answered
            upstream = socket.create_connection(self.target)
            self.conns.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        try:
            while not self.closed.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    while self.frozen.is_set() and not self.closed.is_set():
                        time.sleep(0.05)
                    peer[src].sendall(data)
        except OSError:
            return

    def freeze(self) -> None:
        self.frozen.set()

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def silent_db() -> Iterator[SilentDatabase]:
    db = SilentDatabase()
    yield db
    db.close()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_DB")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _cli(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _assert_clear(text: str) -> None:
    assert "Traceback" not in text, text
    assert PASSWORD not in text, "the database password was printed"


def test_status_on_a_database_that_never_answers_ends_with_a_clear_error_within_the_connect_timeout(
    silent_db,
):
    out = _cli(["--db", silent_db.url, "status"], _env(CONVEYOR_DB_CONNECT_TIMEOUT="2"), timeout=45)
    assert out.returncode == 1
    assert "error: the database postgresql+psycopg://conveyor:***@127.0.0.1:" in out.stderr
    assert "did not answer within 2 s (CONVEYOR_DB_CONNECT_TIMEOUT" in out.stderr
    _assert_clear(out.stdout + out.stderr)


def test_an_engine_on_a_database_that_never_answers_gives_up_with_a_clear_error(silent_db):
    out = _cli(["--db", silent_db.url, "engine"], _env(CONVEYOR_DB_CONNECT_TIMEOUT="2"), timeout=45)
    assert out.returncode == 1
    assert "did not answer within 2 s (CONVEYOR_DB_CONNECT_TIMEOUT" in out.stderr
    _assert_clear(out.stdout + out.stderr)


def test_sigterm_stops_an_engine_waiting_for_a_database_that_never_answers(silent_db, tmp_path):
    log = tmp_path / "engine.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "--db", silent_db.url, "engine"],
            cwd=ROOT,
            env=_env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: silent_db.accepted, 30, "the engine to connect")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _assert_clear(log.read_text())


def _start_on(url: str, tmp_path: Path, **env: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "engine.log"
    for k, v in env.items():
        os.environ[k] = v
    try:
        proc = start_engine(url, log, tick=0.5)
    finally:
        for k in env:
            os.environ.pop(k, None)
    wait_for(
        lambda: " started: tick every" in log.read_text(errors="replace"),
        60,
        "the engine to start",
        [proc],
        [log],
    )
    wait_for(
        lambda: "tick: examined" in log.read_text(errors="replace"),
        60,
        "a first tick",
        [proc],
        [log],
    )
    return proc, log


def _sigterm_and_wait(proc: subprocess.Popen, log: Path, within: float = 15) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"the engine did not stop within {within} s of SIGTERM:\n"
            + log.read_text(errors="replace")[-3000:]
        ) from None


@pytest.mark.postgres
def test_sigterm_stops_an_engine_whose_database_freezes_under_it(pg_url, tmp_path):
    seed(pg_url, incoming=2, contract=1)
    real = sa.engine.make_url(pg_url)
    proxy = FreezableProxy((real.host or "127.0.0.1", real.port or 5432))
    try:
        url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        proc, log = _start_on(url, tmp_path)
        proxy.freeze()  # every connection open now, and every new one, hears nothing from here on
        time.sleep(2)  # let the loops get stuck on it
        code = _sigterm_and_wait(proc, log)
    finally:
        proxy.close()
    text = log.read_text(errors="replace")
    assert "SIGTERM received" in text
    assert code == 1 and "could not hand back its claims" in text and "leases run out" in text
    _assert_clear(text)


def _hold_lock(url: str, table: str) -> tuple[sa.Engine, sa.Connection]:
    eng = sa.create_engine(url)
    conn = eng.connect()
    conn.execute(sa.text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))  # held until rollback
    return eng, conn


@pytest.mark.postgres
@pytest.mark.parametrize(
    "setting, message",
    [
        (
            {"CONVEYOR_DB_LOCK_TIMEOUT": "1"},
            "did not grant a lock held by another session in time (CONVEYOR_DB_LOCK_TIMEOUT",
        ),
        (
            {"CONVEYOR_DB_LOCK_TIMEOUT": "0", "CONVEYOR_DB_STATEMENT_TIMEOUT": "1"},
            "did not finish a statement in time (CONVEYOR_DB_STATEMENT_TIMEOUT",
        ),
    ],
    ids=["lock-timeout", "statement-timeout"],
)
def test_status_on_a_locked_table_ends_with_a_clear_timeout_error(pg_url, setting, message):
    seed(pg_url, incoming=1, contract=0)
    eng, conn = _hold_lock(pg_url, "outbox")
    try:
        out = _cli(["--db", pg_url, "status"], _env(**setting), timeout=45)
    finally:
        conn.rollback()
        conn.close()
        eng.dispose()
    assert out.returncode == 1
    assert "error: cannot read the engine status: the database " + message in out.stderr
    _assert_clear(out.stdout + out.stderr)


@pytest.mark.postgres
def test_an_engine_on_a_locked_table_logs_lock_timeouts_and_still_stops_on_sigterm(
    pg_url, tmp_path
):
    seed(pg_url, incoming=2, contract=1)
    proc, log = _start_on(pg_url, tmp_path, CONVEYOR_DB_LOCK_TIMEOUT="1")
    eng, conn = _hold_lock(pg_url, "outbox")
    try:
        wait_for(
            lambda: "CONVEYOR_DB_LOCK_TIMEOUT" in log.read_text(errors="replace"),
            30,
            "a lock timeout in the log",
            [proc],
            [log],
        )
        code = _sigterm_and_wait(proc, log)
    finally:
        conn.rollback()
        conn.close()
        eng.dispose()
    text = log.read_text(errors="replace")
    assert (
        "failed (retried later): the database did not grant a lock held by another session in time"
        in text
    )
    assert code == 1 and "could not hand back its claims" in text
    _assert_clear(text)

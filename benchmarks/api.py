"""Throughput of the HTTP door: ``conveyor api`` (uvicorn) on a temporary SQLite file on 127.0.0.1,
driven by a load generator in a separate process (``python -m benchmarks.api --load``).

The generator opens ``clients`` keep-alive HTTP/1.1 connections (asyncio streams; a lean client so
its own CPU takes little of the two cores the server shares with it) and each sends one request at a
time for a few seconds: declared events (``POST /api/v1/deals/{key}/events``, an API key) or signed
hooks (``POST /hooks/{name}``, ``Conveyor-Signature``). Every request carries a unique ``seq`` in its
data, so a test can check that every acknowledged event is in the database exactly once.

Reported by ``conveyor bench`` (``api_events_per_s``, ``api_p99_ms`` for 32 clients on the events
endpoint; ``api_hooks_per_s``, ``api_hooks_p99_ms`` for the hook; ``api_one_client_*`` for one
client; ``*_server_cpu_ms``: the server's CPU per request), never asserted by a test. Run alone: ``python -m benchmarks.api [SECONDS [CLIENTS]]``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEALS = 200
CLIENTS = 32
HOOK = "bench"
EVENT = "client_replied"
#: The generator reads the API key and the hook's secret from these (never from its command line).
#: Where each mode posts its events (the floor's trivial endpoints: ``benchmarks.floor``).
EVENT_PATHS = {
    "events": "/api/v1/deals/{deal}/events",
    "floor_async": "/floor/async/{deal}/events",
    "floor_sync": "/floor/sync/{deal}/events",
}
KEY_ENV = "CONVEYOR_BENCH_API_KEY"
SECRET_ENV = "CONVEYOR_BENCH_HOOK_SECRET"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the generator (its own process) -----------------------------------------------------------------
@dataclass
class _Run:
    mode: str
    host: str
    port: int
    key: str
    secret: str
    deals: int
    deadline: float = 0.0


def _request(run: _Run, worker: int, n: int) -> tuple[str, bytes]:
    """Request ``n`` of ``worker``: its seq (unique in the run) and the bytes to send."""
    seq = f"{run.mode[0]}{worker}-{n}"
    deal = f"B-{(worker * 7919 + n) % run.deals}"
    if run.mode != "hooks":
        path = EVENT_PATHS[run.mode].format(deal=deal)
        body = json.dumps({"name": EVENT, "data": {"seq": seq}}).encode()
        auth = f"Authorization: Bearer {run.key}\r\n"
    else:
        path = f"/hooks/{HOOK}"
        body = json.dumps({"id": seq, "deal": deal, "event": EVENT, "data": {"seq": seq}}).encode()
        t = int(time.time())
        mac = hmac.new(run.secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        auth = f"Conveyor-Signature: t={t},v1={mac}\r\n"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {run.host}:{run.port}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return seq, head.encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes, bool]:
    """Send one request on a kept-alive connection; status, body and whether the server keeps it open."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
        elif name == b"transfer-encoding":
            raise RuntimeError("the load generator reads Content-Length bodies only")
    return status, await reader.readexactly(length), keep


async def _worker(
    run: _Run, worker: int, start: asyncio.Event, latencies: list[float], acked: list[str]
) -> None:
    reader, writer = await asyncio.open_connection(run.host, run.port)
    n = 0
    try:
        warm = True
        while True:
            if not warm and time.perf_counter() >= run.deadline:
                break
            seq, request = _request(run, worker, n)
            n += 1
            began = time.perf_counter()
            status, body, keep = await _exchange(reader, writer, request)
            took = time.perf_counter() - began
            if status != 200:
                raise RuntimeError(f"the API answered {status}: {body[:200]!r}")
            acked.append(seq)
            if warm:  # one request per connection before the clock starts
                warm = False
                await start.wait()
            else:
                latencies.append(took)
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection(run.host, run.port)
    finally:
        writer.close()


async def _load(run: _Run, clients: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    acked: list[str] = []
    start = asyncio.Event()
    tasks = [
        asyncio.ensure_future(_worker(run, w, start, latencies, acked)) for w in range(clients)
    ]
    while len(acked) < clients:  # every connection open and warm
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.01)
    warm = len(acked)
    began = time.perf_counter()
    run.deadline = began + seconds
    start.set()
    try:
        await asyncio.gather(*tasks)
    finally:  # one client failed: stop the others, report the first failure
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    wall = time.perf_counter() - began
    latencies.sort()
    count = len(latencies)
    return {
        "requests": count,
        "seconds": wall,
        "per_s": count / wall if wall else 0.0,
        "p50_ms": latencies[count // 2] * 1000 if count else 0.0,
        "p99_ms": latencies[min(count - 1, int(count * 0.99))] * 1000 if count else 0.0,
        "warm_up": warm,
        "acked": acked,
    }


def generate(
    url: str,
    mode: str,
    clients: int,
    seconds: float,
    key: str = "",
    secret: str = "",
    deals: int = DEALS,
) -> dict[str, Any]:
    """Run the load against ``url`` (``http://host:port``) in this process; figures and acked seqs."""
    if mode not in ("events", "hooks", "floor_async", "floor_sync"):
        raise ValueError(f"mode must be events, hooks or floor_*, got {mode!r}")
    host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
    run = _Run(mode, host, int(port), key, secret, deals)
    return asyncio.run(_load(run, clients, seconds))


def load_process(
    target: Target, mode: str, clients: int, seconds: float, generator: str = "python"
) -> dict[str, Any]:
    """The load from a separate process (its CPU apart from the server's): ``wrk`` (``benchmarks.wrk``)
    or ``generate`` in a child Python; the key and the secret reach it through ``env``."""
    if generator == "wrk":
        from benchmarks import wrk

        RUNS[0] += 1  # each run's seqs and hook event ids are its own
        return wrk.generate(
            target.url,
            mode,
            EVENT_PATHS.get(mode, "").removesuffix("{deal}/events"),
            clients,
            seconds,
            target.env,
            deals=target.deals,
            hook_path=f"/hooks/{HOOK}",
            secret=target.env[SECRET_ENV],
            event=EVENT,
            prefix=f"{mode[0]}{os.getpid()}r{RUNS[0]}-",
        )
    before = os.times()
    out = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.api", "--load", target.url, mode),
            *(str(clients), str(seconds), str(target.deals)),
        ],
        cwd=ROOT,
        env=target.env,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    after = os.times()
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else "the load generator failed")
    figures = dict(json.loads(out.stdout))
    cpu = (
        after.children_user + after.children_system - before.children_user - before.children_system
    )
    figures["generator"] = "python"
    figures["generator_cpu_ms"] = cpu * 1000 / max(1, len(figures["acked"]))
    return figures


#: Runs of wrk made by this process (a prefix for their seqs).
RUNS = [0]


def default_generator() -> str:
    """wrk where Debian's package is installed (``make bench`` installs it), else the Python one."""
    from benchmarks import wrk

    return "wrk" if wrk.available() else "python"


# -- the server under test ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    url: str
    env: dict[str, str]  # for the generator: PYTHONPATH, the key and the secret
    db: str
    deals: int
    pid: int  # the server's process


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare(url: str, deals: int = DEALS) -> tuple[str, str]:
    """The bench's database at ``url``: sample rules, ``deals`` deals, an API key and a hook."""
    from engine.core.conveyor import Conveyor
    from engine.paths import SAMPLE_RULES

    c = Conveyor(url)
    try:
        c.load_rules_dir(SAMPLE_RULES)
        c.add_manager("Olena")
        for i in range(deals):
            c.create_deal("techflow", key=f"B-{i}", title=f"Bench {i}")
        c.dispatcher.run_until_idle()
        key = c.api_keys.create("bench", "integration")[1]
        secret = c.hooks.create(HOOK)[1]
    finally:
        c.close()
    return key, secret


@contextmanager
def serve(tmp: str, *, command: list[str] | None = None, deals: int = DEALS) -> Iterator[Target]:
    """A prepared database in ``tmp`` served by ``conveyor api`` (or ``command`` + port) on 127.0.0.1."""
    db = f"sqlite:///{Path(tmp) / 'api.db'}"
    key, secret = prepare(db, deals)
    port = _free_port()
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "CONVEYOR_DB": db, "PYTHONPATH": path}
    argv = command or [sys.executable, "-m", "engine.cli", "api"]
    server = subprocess.Popen(
        [*argv, "--port", str(port)],
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
        yield Target(
            f"http://127.0.0.1:{port}",
            {**env, KEY_ENV: key, SECRET_ENV: secret},
            db,
            deals,
            server.pid,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def bench_api(
    seconds: float = 5,
    log: Callable[[str], None] = lambda _m: None,
    *,
    clients: int = CLIENTS,
    command: list[str] | None = None,
    generator: str | None = None,
    floor: bool = True,
) -> dict[str, Any]:
    """32 keep-alive clients on the events endpoint, then on the signed hook, then one client; with
    ``floor``, the same door (uvicorn, middleware, API key) answering a trivial endpoint: the ceiling
    one process reaches before any of our work (``benchmarks.floor``)."""
    generator = generator or default_generator()
    out: dict[str, Any] = {"api_clients": clients, "api_generator": generator}
    phases: list[tuple[str, str, int]] = [
        ("events", "api_events", clients),
        ("hooks", "api_hooks", clients),
        ("events", "api_one_client_events", 1),
    ]
    with tempfile.TemporaryDirectory(prefix="conveyor-api-bench-") as tmp:
        with serve(tmp, command=command) as target:
            _measure(target, phases, seconds, generator, out, log)
        if floor:
            floors = [("floor_async", "api_floor_async", clients)]
            floors.append(("floor_sync", "api_floor_sync", clients))
            apart = Path(tmp) / "floor"
            apart.mkdir()
            with serve(str(apart), command=[sys.executable, "-m", "benchmarks.floor"]) as target:
                _measure(target, floors, seconds, generator, out, log)
    out["api_p99_ms"] = out.pop("api_events_p99_ms")
    out["api_p50_ms"] = out.pop("api_events_p50_ms")
    return out


def _measure(
    target: Target,
    phases: list[tuple[str, str, int]],
    seconds: float,
    generator: str,
    out: dict[str, Any],
    log: Callable[[str], None],
) -> None:
    # Warm-up, not measured: the first requests compile the rule set and fill the caches.
    load_process(target, phases[0][0], phases[0][2], min(1.0, seconds), generator)
    for mode, prefix, n in phases:
        log(f"api: {n} client(s) on {mode} over HTTP for {seconds:g} s ({generator})")
        before = cpu_seconds(target.pid)
        r = load_process(target, mode, n, seconds, generator)
        after = cpu_seconds(target.pid)
        if before is not None and after is not None and r["requests"]:
            # what decides the rate: one uvicorn process is bound by its GIL
            out[f"{prefix}_server_cpu_ms"] = (after - before) * 1000 / r["requests"]
        out[f"{prefix}_generator_cpu_ms"] = r["generator_cpu_ms"]
        out[f"{prefix}_per_s"] = r["per_s"]
        out[f"{prefix}_p50_ms"] = r["p50_ms"]
        out[f"{prefix}_p99_ms"] = r["p99_ms"]


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--load":
        figures = generate(
            sys.argv[2],
            sys.argv[3],
            int(sys.argv[4]),
            float(sys.argv[5]),
            os.environ.get(KEY_ENV, ""),
            os.environ.get(SECRET_ENV, ""),
            int(sys.argv[6]),
        )
        print(json.dumps(figures))
    else:
        print(
            json.dumps(
                bench_api(
                    float(sys.argv[1]) if len(sys.argv) > 1 else 5,
                    log=print,
                    clients=int(sys.argv[2]) if len(sys.argv) > 2 else CLIENTS,
                ),
                indent=2,
            )
        )

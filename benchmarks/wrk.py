"""The HTTP ingest benchmark's C load generator: Debian's ``wrk`` (``make bench`` installs it), driven
by a Lua script written here, in place of the Python generator of ``benchmarks.api`` when
``/usr/bin/wrk`` exists.

On two cores the Python generator took a good part of a core from the server it measured; wrk's
event loop takes a few per cent. Events carry a unique ``seq`` built per request in Lua (the API key
comes from the environment, never the command line). Hook calls need an HMAC over each body, which
wrk's Lua cannot compute, so this module signs a fixed set of bodies with distinct event ids before
the run (more than the run can send; a wrap-around would send duplicates and is reported as
``wrapped``). Latency is wrk's own per-request distribution (``latency:percentile``), the request
timeout is raised far above any answer so no slow request drops out of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

WRK = "/usr/bin/wrk"
#: Pre-signed hook bodies per second of load: well above what one process can serve.
BODIES_PER_S = 6_000

SCRIPT = r"""
-- benchmarks/wrk.py: events with a unique seq each, or pre-signed hook calls, one per request.
local mode = os.getenv("CONVEYOR_WRK_MODE")
local prefix = os.getenv("CONVEYOR_WRK_PREFIX")
local deals = tonumber(os.getenv("CONVEYOR_WRK_DEALS"))
local events_under = os.getenv("CONVEYOR_WRK_EVENTS_UNDER")
local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  wrapped = 0
  if mode == "hooks" then
    calls = {}
    local nthreads = tonumber(os.getenv("CONVEYOR_WRK_THREADS"))
    local path = os.getenv("CONVEYOR_WRK_PATH")
    local i = 0
    for line in io.lines(os.getenv("CONVEYOR_WRK_BODIES")) do
      if i % nthreads == tid then
        local sig, body = line:match("^([^\t]*)\t(.*)$")
        calls[#calls + 1] = wrk.format("POST", path,
          {["Content-Type"] = "application/json", ["Conveyor-Signature"] = sig}, body)
      end
      i = i + 1
    end
  else
    headers = {["Content-Type"] = "application/json",
               ["Authorization"] = "Bearer " .. os.getenv("CONVEYOR_BENCH_API_KEY")}
  end
end

function request()
  counter = counter + 1
  if mode == "hooks" then
    if counter > #calls then
      counter = 1
      wrapped = wrapped + 1
    end
    return calls[counter]
  end
  local seq = prefix .. tid .. "-" .. counter
  local deal = "B-" .. ((tid * 7919 + counter) % deals)
  return wrk.format("POST", events_under .. deal .. "/events", headers,
    '{"name":"client_replied","data":{"seq":"' .. seq .. '"}}')
end

function done(summary, latency, requests)
  local wraps = 0
  for _, t in ipairs(threads) do
    wraps = wraps + (t:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'CONVEYOR-WRK {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"wrapped":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, wraps))
end
"""


def available() -> bool:
    return os.access(WRK, os.X_OK)


def signed_bodies(
    path: Path, secret: str, hook_deals: int, count: int, prefix: str, event: str
) -> None:
    """``count`` hook calls with distinct event ids, each line ``<Conveyor-Signature>\\t<body>``."""
    t = int(time.time())
    key = secret.encode()
    with path.open("w") as out:
        for n in range(count):
            seq = f"{prefix}{n}"
            body = json.dumps(
                {
                    "id": seq,
                    "deal": f"B-{(n * 7919) % hook_deals}",
                    "event": event,
                    "data": {"seq": seq},
                }
            )
            mac = hmac.new(key, f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
            out.write(f"t={t},v1={mac}\t{body}\n")


def generate(
    url: str,
    mode: str,
    events_under: str,
    clients: int,
    seconds: float,
    env: dict[str, str],
    *,
    deals: int,
    hook_path: str,
    secret: str,
    event: str,
    prefix: str,
) -> dict[str, Any]:
    """One wrk run: ``clients`` keep-alive connections for ``seconds``; the same keys as the Python
    generator (``requests``, ``per_s``, ``p50_ms``, ``p99_ms``) plus ``generator_cpu_ms``.
    ``events_under``: the path before ``<deal>/events`` (``/api/v1/deals/``) when not hooks."""
    threads = max(1, min(2, clients))
    with tempfile.TemporaryDirectory(prefix="conveyor-wrk-") as tmp:
        script = Path(tmp) / "load.lua"
        script.write_text(SCRIPT)
        bodies = Path(tmp) / "bodies.txt"
        if mode == "hooks":
            count = int(BODIES_PER_S * seconds) + 1000
            signed_bodies(bodies, secret, deals, count, prefix, event)
        run_env = {
            **env,
            "CONVEYOR_WRK_MODE": "hooks" if mode == "hooks" else "events",
            "CONVEYOR_WRK_EVENTS_UNDER": events_under,
            "CONVEYOR_WRK_PREFIX": prefix,
            "CONVEYOR_WRK_DEALS": str(deals),
            "CONVEYOR_WRK_THREADS": str(threads),
            "CONVEYOR_WRK_PATH": hook_path,
            "CONVEYOR_WRK_BODIES": str(bodies),
        }
        argv = [WRK, f"-t{threads}", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "60s"]
        before = os.times()
        out = subprocess.run(
            [*argv, "-s", str(script), url],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        after = os.times()
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("CONVEYOR-WRK ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {(out.stderr or out.stdout).strip()[-500:]}")
    r = json.loads(line.removeprefix("CONVEYOR-WRK "))
    errors = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    if errors or r["status_errors"]:
        raise RuntimeError(
            f"wrk: {r['status_errors']} answers were not 2xx/3xx, {errors} socket errors or timeouts"
        )
    wall = r["duration_us"] / 1e6
    cpu = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    return {
        "generator": "wrk",
        "requests": r["requests"],
        "seconds": wall,
        "per_s": r["requests"] / wall if wall else 0.0,
        "p50_ms": r["p50_us"] / 1000,
        "p90_ms": r["p90_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "wrapped": r["wrapped"],
        "generator_cpu_ms": cpu * 1000 / r["requests"] if r["requests"] else 0.0,
    }

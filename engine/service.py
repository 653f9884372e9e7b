"""``conveyor engine``: the long-running service. APScheduler only wakes it; state lives in our tables.

Two jobs on an in-memory job store: the *tick* (evaluate time-based rules, then apply internal
actions) and the *sender* (messages, through a bounded pool, so a slow gateway never delays ticks).
On SQLite one engine process holds a lock file; a second one is refused.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from apscheduler.executors.pool import ThreadPoolExecutor as APThreadPool
from apscheduler.schedulers.blocking import BlockingScheduler

from engine.conveyor import Conveyor
from engine.dispatch import RetryPolicy, dispatch_internal, dispatch_messages
from engine.errors import EngineLocked
from storage import repositories as repo
from storage.db import sqlite_path

log = logging.getLogger("conveyor.engine")


class SqliteEngineLock:
    """An exclusive ``flock`` beside the SQLite file: released by the OS even on SIGKILL."""

    def __init__(self, db_path: str):
        self.path = db_path + ".engine.lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 100).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise EngineLocked(
                f"another conveyor engine (pid {holder}) already runs on {self.path[:-12]}; SQLite supports one "
                "engine process — stop it first, or move to PostgreSQL to run several") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class EngineService:
    def __init__(self, conveyor: Conveyor, *, tick_seconds: float = 60, workers: int = 4,
                 policy: RetryPolicy = RetryPolicy(), db_url: str = ""):
        self.conveyor = conveyor
        self.tick_seconds = tick_seconds
        self.workers = max(1, workers)
        self.policy = policy
        self.lock: SqliteEngineLock | None = None
        path = sqlite_path(db_url) if db_url else None
        if path:
            self.lock = SqliteEngineLock(path)
        self.scheduler = BlockingScheduler(
            executors={"default": APThreadPool(2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="conveyor-send")
        self.started_at: datetime | None = None
        self._stopping = threading.Event()
        self._stopper: threading.Thread | None = None

    # -- jobs ------------------------------------------------------------------------------------
    def tick_job(self) -> None:
        if self._stopping.is_set():
            return
        started = time.perf_counter()
        report = self.conveyor.tick()
        applied = 0
        while not self._stopping.is_set():
            batch = dispatch_internal(self.conveyor, policy=self.policy)
            if not batch:
                break
            applied += len(batch)
        seconds = time.perf_counter() - started
        summary = {"deals_examined": report.deals_examined, "rules_fired": report.rules_fired,
                   "actions_queued": report.actions_queued, "internal_actions_applied": applied}
        log.info("tick: examined %d deals, fired %d rules, queued %d actions, applied %d internal actions in %.3f s",
                 report.deals_examined, report.rules_fired, report.actions_queued, applied, seconds)
        self._heartbeat(last_tick_at=report.at, last_tick_seconds=seconds, last_tick_summary=summary)

    def send_job(self) -> None:
        """Send ready messages, ``workers`` at a time; claims are leases, so a crash loses nothing."""
        while not self._stopping.is_set():
            # dispatch_messages sends serially; claim a batch per worker slot and send in parallel.
            futures = [self.pool.submit(dispatch_messages, self.conveyor, 1, self.policy) for _ in range(self.workers)]
            sent = sum(len(f.result()) for f in futures)
            if sent == 0:
                return

    def internal_job(self) -> None:
        """Apply internal actions queued by changes made elsewhere (builder, CLI) between ticks."""
        while not self._stopping.is_set() and dispatch_internal(self.conveyor, policy=self.policy):
            pass

    def _heartbeat(self, **values: object) -> None:
        now = self.conveyor.clock.now()
        with self.conveyor.session() as s:
            repo.upsert_heartbeat(s, self.conveyor.engine_id, host=socket.gethostname(), pid=os.getpid(),
                                  started_at=self.started_at or now, seen_at=now, **values)

    # -- life cycle ------------------------------------------------------------------------------
    def run(self) -> None:
        if self.lock:
            self.lock.acquire()
        self.started_at = self.conveyor.clock.now()
        self._heartbeat(stopped_at=None)
        log.info("engine %s started: tick every %g s, %d message worker(s)", self.conveyor.engine_id,
                 self.tick_seconds, self.workers)
        self.scheduler.add_job(self.tick_job, "interval", seconds=self.tick_seconds, id="tick",
                               next_run_time=datetime.now().astimezone())
        self.scheduler.add_job(self.send_job, "interval", seconds=1, id="send")
        self.scheduler.add_job(self.internal_job, "interval", seconds=1, id="internal")
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            self.scheduler.start()
        finally:
            self._shutdown()

    def _on_signal(self, signum: int, _frame: object) -> None:
        log.info("engine %s: %s received, finishing the action in hand", self.conveyor.engine_id,
                 signal.Signals(signum).name)
        self._stopping.set()
        # shutdown(wait=False) from a signal handler; run()'s finally waits for the jobs.
        self._stopper = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True)
        self._stopper.start()

    def _shutdown(self) -> None:
        self._stopping.set()
        if self._stopper is not None:
            self._stopper.join()  # the job in hand finishes before claims are released
        self.pool.shutdown(wait=True)
        now = self.conveyor.clock.now()
        with self.conveyor.session() as s:
            released = repo.release_claims(s, self.conveyor.engine_id, now)
            repo.upsert_heartbeat(s, self.conveyor.engine_id, host=socket.gethostname(), pid=os.getpid(),
                                  started_at=self.started_at or now, seen_at=now, stopped_at=now)
        if self.lock:
            self.lock.release()
        log.info("engine %s stopped cleanly (released %d claim(s))", self.conveyor.engine_id, released)


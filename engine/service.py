"""``conveyor engine``: the long-running service. APScheduler only wakes it; state lives in our tables.

Jobs on an in-memory job store, each on its own thread so none waits for another: the *tick*
(evaluate time-based rules, then apply internal actions), *internal* (actions queued by changes made
elsewhere), *send* (messages, ``workers`` at a time, so a slow gateway never delays ticks or internal
actions) and *heartbeat* (what ``conveyor status`` reads). On SQLite one engine process holds a lock
file and a second one is refused; on PostgreSQL any number may run (unique keys + row claims).
"""

from __future__ import annotations

import faulthandler
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
from engine.crashpoints import crashpoint
from engine.dispatch import RetryPolicy, dispatch_internal, dispatch_messages
from engine.errors import EngineLocked
from storage import repositories as repo
from storage.db import sqlite_path

log = logging.getLogger("conveyor.engine")

#: How often an engine says it is alive between ticks (``conveyor status`` reads it).
HEARTBEAT_SECONDS = 10
#: Internal actions per transaction on SQLite: small, so the builder and the CLI, which write to the
#: same file, get the write lock between batches instead of waiting behind a long one.
INTERNAL_BATCH = 20


class SqliteEngineLock:
    """An exclusive ``flock`` beside the SQLite file: released by the OS even on SIGKILL."""

    def __init__(self, db_path: str):
        self.db_path = db_path
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
                f"another conveyor engine (pid {holder}) already runs on {self.db_path}; SQLite supports one "
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
                 policy: RetryPolicy | None = None, db_url: str = ""):
        self.conveyor = conveyor
        self.tick_seconds = tick_seconds
        self.workers = max(1, workers)
        self.policy = policy or RetryPolicy()
        self.lock: SqliteEngineLock | None = None
        path = sqlite_path(db_url) if db_url else None
        if path:
            self.lock = SqliteEngineLock(path)
        # One thread per job: a long tick must not hold up sending, nor a slow gateway the tick.
        self.scheduler = BlockingScheduler(
            executors={"default": APThreadPool(4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="conveyor-send")
        self.started_at: datetime | None = None
        self.ticks = 0
        self._stopping = threading.Event()
        self._not_starting = threading.Event()  # run() will not (or no longer) start the scheduler
        self._stopper: threading.Thread | None = None

    # -- jobs ------------------------------------------------------------------------------------
    def tick_job(self) -> None:
        if self._stopping.is_set():
            return
        started = time.perf_counter()
        try:
            report = self.conveyor.tick()
            crashpoint("after_commit_before_dispatch")  # firings committed, outbox not yet dispatched
            applied = 0
            # Apply what the tick queued, but only for about one interval: a backlog is the internal
            # job's to drain, and the next evaluation of due timers must not wait behind it.
            while not self._stopping.is_set() and time.perf_counter() - started < self.tick_seconds:
                batch = dispatch_internal(self.conveyor, INTERNAL_BATCH, self.policy)
                if not batch:
                    break
                applied += len(batch)
        except Exception as exc:  # noqa: BLE001 - a failed tick is retried by the next one; keep serving
            log.error("tick failed (the next tick retries it): %s: %s", type(exc).__name__,
                      str(exc).splitlines()[0] if str(exc) else "")
            return
        seconds = time.perf_counter() - started
        if seconds > self.tick_seconds:
            log.warning("tick took %.1f s, longer than the %g s interval: the ticks in between were merged "
                        "into the next one (nothing is lost; consider a larger --tick-seconds)", seconds,
                        self.tick_seconds)
        self.ticks += 1
        summary = {"deals_examined": report.deals_examined, "rules_fired": report.rules_fired,
                   "actions_queued": report.actions_queued, "internal_actions_applied": applied, "deals_failed": report.deals_failed,
                   "tick_seconds": self.tick_seconds, "ticks": self.ticks}
        log.info("tick: examined %d deals, fired %d rules, queued %d actions, applied %d internal actions in %.3f s",
                 report.deals_examined, report.rules_fired, report.actions_queued, applied, seconds)
        try:
            self._heartbeat(last_tick_at=report.at, last_tick_seconds=seconds, last_tick_summary=summary)
        except Exception as exc:  # noqa: BLE001 - only the status screen misses this tick
            log.warning("could not record the tick for `conveyor status`: %s", exc)

    def _send_worker(self) -> int:
        """One sender: claim one message, send it, repeat until none is ready (or we are stopping)."""
        sent = 0
        while not self._stopping.is_set():
            batch = dispatch_messages(self.conveyor, 1, self.policy)
            if not batch:
                break
            sent += len(batch)
        return sent

    def send_job(self) -> None:
        """Send ready messages, ``workers`` at a time; each worker moves on as soon as its call returns."""
        futures = [self.pool.submit(self._send_worker) for _ in range(self.workers)]
        try:
            sent = sum(f.result() for f in futures)
        except Exception as exc:  # noqa: BLE001 - claims are leases: whatever was in hand is retried later
            log.error("sending failed: %s: %s", type(exc).__name__, exc)
            return
        if sent:
            log.info("sent %d message(s)", sent)

    def internal_job(self) -> None:
        """Apply internal actions queued by changes made elsewhere (builder, CLI) between ticks."""
        try:
            while not self._stopping.is_set() and dispatch_internal(self.conveyor, INTERNAL_BATCH, self.policy):
                pass
        except Exception as exc:  # noqa: BLE001 - the transaction rolled back; the rows stay ready
            log.error("applying internal actions failed: %s: %s", type(exc).__name__, exc)

    def heartbeat_job(self) -> None:
        try:
            self._heartbeat()
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat only makes status look stale
            log.warning("heartbeat failed: %s", exc)

    def _heartbeat(self, **values: object) -> None:
        now = self.conveyor.clock.now()
        with self.conveyor.session() as s:
            repo.upsert_heartbeat(s, self.conveyor.engine_id, host=socket.gethostname(), pid=os.getpid(),
                                  started_at=self.started_at or now, seen_at=now, **values)

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Take the SQLite lock, say hello, and (SQLite only) take back leases of dead processes."""
        if self.lock:
            self.lock.acquire()
        self.started_at = self.conveyor.clock.now()
        if self.lock:
            # We hold the only engine lock, so a message left 'sending' belongs to a process that
            # died: reconcile it now instead of waiting for its lease to run out.
            with self.conveyor.session() as s:
                taken = repo.expire_leases(s, self.started_at)
            if taken:
                log.info("took back %d message(s) left 'sending' by a stopped engine", taken)
        self._heartbeat(stopped_at=None, last_tick_summary={"tick_seconds": self.tick_seconds})

    def run(self) -> None:
        # Handlers first: a SIGTERM that arrives while we start up still means a clean stop.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        # `kill -USR1 <pid>` prints every thread's stack: what a stuck engine is waiting for.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        # A tick longer than the interval makes APScheduler warn on every skipped wake-up; we say it
        # once per long tick instead (see tick_job).
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        try:
            self.start()
            log.info("engine %s started: tick every %g s, %d message worker(s)", self.conveyor.engine_id,
                     self.tick_seconds, self.workers)
            now = datetime.now().astimezone()
            self.scheduler.add_job(self.tick_job, "interval", seconds=self.tick_seconds, id="tick",
                                   next_run_time=now)
            self.scheduler.add_job(self.send_job, "interval", seconds=1, id="send", next_run_time=now)
            self.scheduler.add_job(self.internal_job, "interval", seconds=1, id="internal")
            self.scheduler.add_job(self.heartbeat_job, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat")
            if not self._stopping.is_set():
                self.scheduler.start()
        finally:
            self._not_starting.set()
            self._shutdown()

    def _on_signal(self, signum: int, _frame: object) -> None:
        log.info("engine %s: %s received, finishing the action in hand", self.conveyor.engine_id,
                 signal.Signals(signum).name)
        self._stopping.set()
        if self._stopper is None:
            # Not from the handler itself: shutdown(wait=True) waits for the running jobs.
            self._stopper = threading.Thread(target=self._stop_scheduler, daemon=True)
            self._stopper.start()

    def _stop_scheduler(self) -> None:
        # The signal may come before the scheduler runs: wait until it does, or until run() gave up.
        while not self.scheduler.running and not self._not_starting.wait(0.05):
            pass
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def _shutdown(self) -> None:
        self._stopping.set()
        if self._stopper is not None:
            self._stopper.join()  # the job in hand finishes before claims are released
        self.pool.shutdown(wait=True)
        if self.started_at is None:  # refused at start (e.g. the SQLite lock): nothing to hand back
            return
        now = self.conveyor.clock.now()
        with self.conveyor.session() as s:
            released = repo.release_claims(s, self.conveyor.engine_id, now)
            repo.upsert_heartbeat(s, self.conveyor.engine_id, host=socket.gethostname(), pid=os.getpid(),
                                  started_at=self.started_at or now, seen_at=now, stopped_at=now)
        if self.lock:
            self.lock.release()
        log.info("engine %s stopped cleanly (released %d claim(s))", self.conveyor.engine_id, released)

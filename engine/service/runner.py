"""``conveyor engine``: the long-running service. Its loops keep time on ``time.monotonic()``; state lives in our tables.

Daemon threads, none waiting for another: the *tick* loop (evaluate time-based rules, then apply
internal actions) every ``tick_seconds``, the *internal* loop (actions queued by changes made
elsewhere) every second, ``workers`` *senders* (each claims one message, sends it and claims the
next, so up to ``workers`` calls are in flight whenever that many messages are due; an idle one looks
again every second, or at once when another one finds work) and the *heartbeat* (what ``conveyor
status`` reads). Intervals are measured on the monotonic clock, so a step of the wall clock in
either direction neither pauses nor rushes the engine; the times it writes stay wall-clock UTC from
``conveyor.clock``. (APScheduler's interval trigger schedules on the wall clock, which is why these
loops replaced it; see docs/operations.md.) On SQLite one engine process holds a lock file and a
second one is refused; on PostgreSQL any number may run (unique keys + row claims).

Stopping never waits for the database for long: the threads are daemons, a stop waits a few seconds
for them (longer only for a message being handed to the gateway) and the last write (hand back
claims, say "stopped") has a short limit of its own.
"""

from __future__ import annotations

import faulthandler
import fcntl
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from engine.core.conveyor import Conveyor
from engine.crashpoints import crashpoint
from engine.errors import EngineLocked
from engine.outbox.dispatcher import RetryPolicy, dispatch_internal, dispatch_messages
from storage.db import describe_error, sqlite_path
from storage.errors import DatabaseUnavailable

log = logging.getLogger("conveyor.engine")

#: How often an engine says it is alive between ticks (``conveyor status`` reads it).
HEARTBEAT_SECONDS = 10
#: Internal actions per transaction on SQLite: small, so the builder and the CLI, which write to the
#: same file, get the write lock between batches instead of waiting behind a long one.
INTERNAL_BATCH = 20
#: How often the internal loop looks for actions queued elsewhere, and an idle sender for messages.
POLL_SECONDS = 1.0
#: How long a stop waits for threads busy with the database (a transaction abandoned then is rolled
#: back by the database when the process exits: nothing half done).
SHUTDOWN_GRACE_SECONDS = 3.0
#: Limit of the last write of a stop (hand back claims, record the stop).
FINAL_WRITE_SECONDS = 3.0


_T = TypeVar("_T")


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
                "engine process — stop it first, or move to PostgreSQL to run several"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class _WatchedProvider:
    """The conveyor's provider, watched: who is in a gateway call since when, and a hook on each send.

    A stop waits for a call in progress (the message in hand is finished and recorded) but not for
    threads stuck on the database; the hook wakes an idle sender as soon as one sender has work.
    """

    def __init__(self, inner: Any, on_send: Callable[[], None]):
        self.inner = inner
        self.name = inner.name
        self.timeout = float(getattr(inner, "timeout", 10) or 10)
        self._on_send = on_send
        self._lock = threading.Lock()
        self._calls: dict[int, float] = {}  # thread id -> monotonic start of its call
        self.last_finished = -math.inf

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        me = threading.get_ident()
        with self._lock:
            self._calls[me] = time.monotonic()
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._calls.pop(me, None)
                self.last_finished = time.monotonic()

    def send(self, message: Any) -> str | None:
        self._on_send()
        gateway_id: str | None = self._call(self.inner.send, message)
        return gateway_id

    def delivered(self, idempotency_key: str) -> bool | None:
        self._on_send()
        found: bool | None = self._call(self.inner.delivered, idempotency_key)
        return found

    def reconcile(self, message: Any) -> Any:
        """Asking the gateway about a message is a gateway call too (the channel router needs the message)."""
        self._on_send()
        ask = getattr(self.inner, "reconcile", None)
        if callable(ask):
            return self._call(ask, message)
        return self._call(self.inner.delivered, message.idempotency_key)

    def busy_until(self) -> float:
        """Until when (monotonic) a stop should wait for calls in progress and the recording after them."""
        with self._lock:
            ends = [start + self.timeout for start in self._calls.values()]
            last = self.last_finished
        return max([*ends, last]) + SHUTDOWN_GRACE_SECONDS


class EngineService:
    def __init__(
        self,
        conveyor: Conveyor,
        *,
        tick_seconds: float = 60,
        workers: int = 4,
        policy: RetryPolicy | None = None,
        db_url: str = "",
    ):
        self.conveyor = conveyor
        self.tick_seconds = tick_seconds
        self.workers = max(1, workers)
        self.policy = policy or RetryPolicy()
        self.lock: SqliteEngineLock | None = None
        self.db_path = sqlite_path(db_url) if db_url else None
        if self.db_path:
            self.lock = SqliteEngineLock(self.db_path)
        self._db_identity: tuple[int, int] | None = (
            None  # (st_dev, st_ino) of the SQLite file at start
        )
        self._send_ready = threading.Condition()
        self.provider = _WatchedProvider(conveyor.provider, self._wake_a_sender)
        conveyor.provider = self.provider
        self.started_at: datetime | None = None
        self.ticks = 0
        self.sent = 0
        self._sent_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fatal: BaseException | None = None  # why the engine stops by itself (exit non-zero)
        self._scheduler: Any = None  # APScheduler: the daily digest's wake-up only
        self._scheduler_lock = threading.RLock()
        self.digest_wake_ups = 0

    # -- jobs ------------------------------------------------------------------------------------
    def tick_job(self) -> None:
        if self._stopping.is_set():
            return
        started = time.perf_counter()
        try:
            report = self.conveyor.tick()
            crashpoint(
                "after_commit_before_dispatch"
            )  # firings committed, outbox not yet dispatched
            applied = 0
            # Apply what the tick queued, but only for about one interval: a backlog is the internal
            # loop's to drain, and the next evaluation of due timers must not wait behind it.
            while not self._stopping.is_set() and time.perf_counter() - started < self.tick_seconds:
                batch = dispatch_internal(self.conveyor, INTERNAL_BATCH, self.policy)
                if not batch:
                    break
                applied += len(batch)
        except Exception as exc:  # noqa: BLE001 - a failed tick is retried by the next one; keep serving
            log.error("tick failed (the next tick retries it): %s", describe_error(exc))
            return
        seconds = time.perf_counter() - started
        if seconds > self.tick_seconds:
            log.warning(
                "tick took %.1f s, longer than the %g s interval: the ticks in between were merged "
                "into the next one (nothing is lost; consider a larger --tick-seconds)",
                seconds,
                self.tick_seconds,
            )
        self.ticks += 1
        summary = {
            "deals_examined": report.deals_examined,
            "rules_fired": report.rules_fired,
            "actions_queued": report.actions_queued,
            "internal_actions_applied": applied,
            "deals_failed": report.deals_failed,
            "tick_seconds": self.tick_seconds,
            "heartbeat_seconds": HEARTBEAT_SECONDS,
            "ticks": self.ticks,
        }
        log.info(
            "tick: examined %d deals, fired %d rules, queued %d actions, applied %d internal actions in %.3f s",
            report.deals_examined,
            report.rules_fired,
            report.actions_queued,
            applied,
            seconds,
        )
        try:
            self._heartbeat(
                last_tick_at=report.at, last_tick_seconds=seconds, last_tick_summary=summary
            )
        except Exception as exc:  # noqa: BLE001 - only the status screen misses this tick
            log.warning("could not record the tick for `conveyor status`: %s", describe_error(exc))

    def _send_loop(self) -> None:
        """One sender: claim one message, send it, repeat; when none is ready, wait a second or a wake-up."""
        while not self._stopping.is_set() and self._database_still_there():
            try:
                batch = dispatch_messages(self.conveyor, 1, self.policy)
            except Exception as exc:  # noqa: BLE001 - claims are leases: whatever was in hand is retried later
                log.error("sending failed (retried later): %s", describe_error(exc))
                self._stopping.wait(POLL_SECONDS)
                continue
            if batch:
                with self._sent_lock:
                    self.sent += len(batch)
                continue
            with self._send_ready:
                if not self._stopping.is_set():
                    self._send_ready.wait(POLL_SECONDS)

    def _wake_a_sender(self) -> None:
        # A sender just claimed a message, so more may be due: an idle one looks now, not in a second.
        with self._send_ready:
            self._send_ready.notify()

    def internal_job(self) -> None:
        """Apply internal actions queued by changes made elsewhere (builder, CLI) between ticks."""
        try:
            while not self._stopping.is_set() and dispatch_internal(
                self.conveyor, INTERNAL_BATCH, self.policy
            ):
                pass
        except Exception as exc:  # noqa: BLE001 - the transaction rolled back; the rows stay ready
            log.error(
                "applying internal actions failed (retried in a second): %s", describe_error(exc)
            )

    def digest_job(self) -> None:
        """Queue the managers' digests that are due (at the hour, or late after a start): once a day
        each, whichever engine wakes first (the outbox's unique key)."""
        if self._stopping.is_set():
            return
        try:
            self.conveyor.digests.queue_due()
        except Exception as exc:  # noqa: BLE001 - the next wake-up (or start) tries again
            log.error("queueing the daily digests failed: %s", describe_error(exc))
        self.digest_wake_ups += 1

    def digest_wake_up(self) -> Any:
        """The digest's APScheduler job (its trigger says when it next wakes), or None."""
        scheduler = self._scheduler
        return scheduler.get_job("digest") if scheduler is not None else None

    def _start_digest(self) -> None:
        # APScheduler as a wake-up only: an in-memory job store of this process, the state in the
        # outbox. Its cron trigger runs on the wall clock, which is what "09:00 every day" means.
        from apscheduler.schedulers.background import BackgroundScheduler

        if not self.conveyor.digests.settings.enabled:
            return
        scheduler = BackgroundScheduler(timezone=UTC, daemon=True)
        self.conveyor.digests.schedule(scheduler, self.digest_job)
        # Started and published under the lock _stop_threads takes: a stop that came while APScheduler
        # was starting would otherwise join its thread before it started (the engine exited 2).
        with self._scheduler_lock:
            if self._stopping.is_set():  # stopped while this thread was getting here
                return
            scheduler.start()
            self._scheduler = scheduler
        self.digest_job()  # an engine that starts after the hour catches up on today's digest

    def heartbeat_job(self) -> None:
        with self._sent_lock:
            sent, self.sent = self.sent, 0
        if sent:
            log.info("sent %d message(s)", sent)
        try:
            self._heartbeat()
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat only makes status look stale
            log.warning("heartbeat failed: %s", describe_error(exc))

    def _heartbeat(self, **values: object) -> None:
        self.conveyor.engines.heartbeat(
            host=socket.gethostname(), pid=os.getpid(), started_at=self.started_at, **values
        )

    def _database_still_there(self) -> bool:
        """SQLite: is the file at the path still the one the engine started on? If not, stop the engine.

        A file deleted (or replaced) under a running engine would otherwise be recreated empty by
        the next connection, and the engine would carry on as if nothing had happened.
        """
        if self._db_identity is None or self.db_path is None:
            return True
        try:
            st = os.stat(self.db_path)
            current: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            current = None
        if current == self._db_identity:
            return True
        if self._fatal is None:
            what = "deleted" if current is None else "replaced by another file"
            self._fatal = DatabaseUnavailable(
                f"the SQLite database {self.db_path} was {what} while the engine ran; the engine stopped so as "
                "not to carry on with a new, empty database — restore the file (or `conveyor init` a new one) "
                "and start the engine again"
            )
            log.error("%s", self._fatal)
            self._stop_threads()
        return False

    # -- loops -----------------------------------------------------------------------------------
    def _every(self, seconds: float, job: Callable[[], None], *, first_in: float = 0.0) -> None:
        """Run ``job`` every ``seconds`` of monotonic time; a late run skips the missed slots (merged)."""
        next_at = time.monotonic() + first_in
        while not self._stopping.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self._stopping.wait(delay):
                return
            if not self._database_still_there():
                return
            job()
            next_at += seconds
            behind = time.monotonic() - next_at
            if behind > 0:
                next_at += math.ceil(behind / seconds) * seconds

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(
            target=self._guarded, args=(name, target), name=f"conveyor-{name}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _guarded(self, name: str, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - a broken loop must stop the engine visibly, not silently
            if self._fatal is None:
                self._fatal = exc
            log.error(
                "engine %s: the %s loop failed: %s",
                self.conveyor.engine_id,
                name,
                describe_error(exc),
            )
            self._stop_threads()

    def _stop_threads(self) -> None:
        self._stopping.set()
        with self._scheduler_lock:  # re-entrant: a signal may land while this thread holds it
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
        with self._send_ready:
            self._send_ready.notify_all()

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Take the SQLite lock, say hello, and (SQLite only) take back leases of dead processes."""
        if self.lock:
            self.lock.acquire()
            st = os.stat(self.lock.db_path)
            self._db_identity = (st.st_dev, st.st_ino)
        self.started_at = self.conveyor.clock.now()
        if self.lock:
            # We hold the only engine lock, so a message left 'sending' belongs to a process that
            # died: reconcile it now instead of waiting for its lease to run out.
            taken = self.conveyor.engines.take_back_leases(self.started_at)
            if taken:
                log.info("took back %d message(s) left 'sending' by a stopped engine", taken)
        self._heartbeat(
            stopped_at=None,
            last_tick_summary={
                "tick_seconds": self.tick_seconds,
                "heartbeat_seconds": HEARTBEAT_SECONDS,
            },
        )

    def _start_and_serve(self) -> None:
        try:
            self.start()
        except BaseException as exc:  # noqa: BLE001 - run() raises it in the main thread
            self._fatal = exc
            self._stop_threads()
            return
        if self._stopping.is_set():
            return
        log.info(
            "engine %s started: tick every %g s, %d message worker(s)",
            self.conveyor.engine_id,
            self.tick_seconds,
            self.workers,
        )
        self._spawn("tick", lambda: self._every(self.tick_seconds, self.tick_job))
        self._spawn("digest", self._start_digest)
        for i in range(self.workers):
            self._spawn(f"send-{i + 1}", self._send_loop)
        self._spawn(
            "internal", lambda: self._every(POLL_SECONDS, self.internal_job, first_in=POLL_SECONDS)
        )
        self._spawn(
            "heartbeat",
            lambda: self._every(HEARTBEAT_SECONDS, self.heartbeat_job, first_in=HEARTBEAT_SECONDS),
        )

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT (exit normally) or a fatal problem (raised, after the stop)."""
        # Handlers first: a SIGTERM that arrives while we start up still means a clean stop.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        # `kill -USR1 <pid>` prints every thread's stack: what a stuck engine is waiting for.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        # The main thread only waits, so a signal is handled at once whatever the others wait for.
        self._spawn("start", self._start_and_serve)
        try:
            while not self._stopping.wait(0.5):
                pass
        finally:
            self._shutdown()
        if self._fatal is not None:
            raise self._fatal

    def serve_in_thread(self) -> threading.Thread:
        """Start without signal handlers (tests, embedding): stop with ``stop()``, then ``join()`` the thread."""

        def body() -> None:
            self._spawn("start", self._start_and_serve)
            self._stopping.wait()
            self._shutdown()

        thread = threading.Thread(target=body, name="conveyor-service", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop_threads()

    def _on_signal(self, signum: int, _frame: object) -> None:
        log.info(
            "engine %s: %s received, finishing the action in hand",
            self.conveyor.engine_id,
            signal.Signals(signum).name,
        )
        self._stop_threads()

    def _join_threads(self) -> list[str]:
        """Wait for the threads: a few seconds, or while a gateway call is finishing. Names of those left."""
        grace_end = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        while True:
            alive = [t for t in self._threads if t.is_alive()]
            if not alive:
                return []
            end = max(grace_end, self.provider.busy_until())
            left = end - time.monotonic()
            if left <= 0:
                return [t.name for t in alive]
            alive[0].join(min(left, 0.1))

    def _final_write(self) -> tuple[int | None, str | None]:
        """Hand back our claims and record the stop, within ``FINAL_WRITE_SECONDS``: (released, error)."""
        outcome: dict[str, Any] = {}

        def write() -> None:
            try:
                outcome["released"] = self.conveyor.engines.record_stop(
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=self.started_at,
                    within_seconds=FINAL_WRITE_SECONDS,
                )
            except Exception as exc:  # noqa: BLE001 - reported by the caller
                outcome["error"] = describe_error(exc)

        thread = threading.Thread(target=write, name="conveyor-final-write", daemon=True)
        thread.start()
        thread.join(FINAL_WRITE_SECONDS + 0.5)
        if thread.is_alive():
            return None, f"the database did not answer within {FINAL_WRITE_SECONDS:g} s"
        return outcome.get("released"), outcome.get("error")

    def _shutdown(self) -> None:
        self._stop_threads()
        stuck = self._join_threads()
        if stuck:
            log.warning(
                "engine %s: %s still waiting on the database after %g s; not waiting longer (an "
                "unfinished transaction is rolled back, its work stays to do)",
                self.conveyor.engine_id,
                ", ".join(stuck),
                SHUTDOWN_GRACE_SECONDS,
            )
        try:
            if (
                self.started_at is None
            ):  # refused at start (e.g. the SQLite lock): nothing to hand back
                return
            if self._db_identity is not None and not self._database_still_there():
                log.error(
                    "engine %s stopped without writing to %s (the file is not the one it started on)",
                    self.conveyor.engine_id,
                    self.db_path,
                )
                return
            released, error = self._final_write()
            if error:
                log.error(
                    "engine %s stopped, but could not hand back its claims: %s; another engine takes them "
                    "over when their leases run out",
                    self.conveyor.engine_id,
                    error,
                )
                if self._fatal is None:
                    self._fatal = DatabaseUnavailable(
                        f"the engine stopped, but could not record its stop: {error}"
                    )
                return
            how = "cleanly" if not stuck else "(abandoning " + ", ".join(stuck) + ")"
            log.info(
                "engine %s stopped %s (released %d claim(s))",
                self.conveyor.engine_id,
                how,
                released or 0,
            )
        finally:
            if self.lock:
                self.lock.release()

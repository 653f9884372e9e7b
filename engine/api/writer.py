"""One writer thread for the API's ingest endpoints (events, hooks) on a group-committing database.

Each request, on the event loop, hands its change to the writer and awaits its answer. The writer
takes every change queued at that moment (at most ``MAX_GROUP``) and runs them one after another
inside one ``GroupCommit.batch()``: each is decided on its own (its own savepoint; a refused one
raises its own error and is answered alone) and one COMMIT makes them all durable. Only when that
COMMIT has returned does the writer apply what the group queued for the engine's internal actions
(one look for the whole group), build each answer and wake the waiting requests, with one hand-off
to the event loop per group. Nothing is acknowledged before it is durable; a failed COMMIT fails
every request of its group, refusals included (they may have read what the group wrote).

This replaces, per request, a trip through FastAPI's thread pool and back plus the group
committer's hand-over of the write turn between threads. Without group commit (PostgreSQL, where
concurrent transactions run in parallel) the endpoints keep the thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from starlette.requests import Request

from engine.core.conveyor import Conveyor
from engine.core.evaluation import internal_queued
from engine.core.group_commit import MAX_GROUP, own_copy

__all__ = ["Writer", "writer_of"]

log = logging.getLogger("conveyor.api")
T = TypeVar("T")


def writer_of(request: Request) -> Writer | None:
    """The application's writer; None where changes go through the thread pool (no group commit)."""
    writer: Writer | None = getattr(request.app.state, "writer", None)
    return writer


@dataclass(eq=False)
class _Job(Generic[T]):
    change: Callable[[], Any]  # in the group's batch: the change, refused by raising
    answer: Callable[[Any], T]  # after the COMMIT: the answer from what ``change`` returned
    applies: Callable[
        [Any], bool
    ]  # whether what the change queued is to be applied before answering
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    value: Any = None
    queued: bool = False
    error: BaseException | None = None
    result: Any = None
    answered: bool = False


class Writer:
    """The thread that runs the ingest endpoints' changes, grouped (``start`` / ``stop``)."""

    def __init__(self, conveyor: Conveyor, *, max_group: int = MAX_GROUP):
        self._c = conveyor
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.groups = 0  # groups run (figures for tests and the benchmark)
        self.changes = 0  # changes run in them

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="conveyor-api-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Runs what is queued, then ends the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=60)
            self._thread = None

    async def run(
        self,
        change: Callable[[], Any],
        answer: Callable[[Any], T],
        applies: Callable[[Any], bool] = lambda _v: True,
    ) -> T:
        """``change()`` in the writer's next group, then ``answer(its value)`` once the group is
        durable; the change's own exception (a refusal) or the group's (a failed COMMIT) is raised."""
        if self._thread is None:
            raise RuntimeError("the API's writer is not running")
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(change, answer, applies, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    # -- the thread --------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            stop = False
            while len(jobs) < self._max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
            try:
                self._group(jobs)
            except BaseException as exc:  # no request may wait for ever
                for job in jobs:
                    if job.error is None and not job.answered:
                        job.error = exc
                log.exception("the API's writer failed a group")
            finally:
                _deliver(jobs)
            if stop:
                return

    def _group(self, jobs: list[_Job[Any]]) -> None:
        try:
            with self._c.group_commit.batch():
                for job in jobs:
                    mark = internal_queued()
                    try:
                        job.value = job.change()
                    except Exception as exc:  # noqa: BLE001 - refused alone, answered alone
                        job.error = exc
                    job.queued = internal_queued() != mark
        except Exception as exc:  # noqa: BLE001 - the COMMIT failed: nothing of the group is durable
            for job in jobs:
                job.error = exc
            return
        self.groups += 1
        self.changes += len(jobs)
        ok = [job for job in jobs if job.error is None]
        if any(job.queued and job.applies(job.value) for job in ok):
            try:
                self._c.apply_queued()
            except Exception as exc:  # noqa: BLE001 - as the thread-pool path: the request hears it
                for job in ok:
                    if job.queued:
                        job.error = exc
        for job in ok:
            if job.error is None:
                try:
                    job.result = job.answer(job.value)
                    job.answered = True
                except Exception as exc:  # noqa: BLE001 - this answer's own failure
                    job.error = exc


def _deliver(jobs: list[_Job[Any]]) -> None:
    """Wake the waiting requests: one call into each event loop for the whole group."""
    loops: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
    for job in jobs:
        loops.setdefault(job.loop, []).append(job)
    for loop, mine in loops.items():
        try:
            loop.call_soon_threadsafe(_settle, mine)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _settle(jobs: list[_Job[Any]]) -> None:
    for job in jobs:
        if job.future.done():  # the request was cancelled (its client went away)
            continue
        if job.error is not None:
            job.future.set_exception(_own(job.error))
        else:
            job.future.set_result(job.result)


def _own(error: BaseException) -> Exception:
    """What one request raises: its own copy (``own_copy``), and never a BaseException that is not an
    Exception (SystemExit set on a future would stop the server's event loop)."""
    if isinstance(error, Exception):
        return cast(Exception, own_copy(error))
    wrapped = RuntimeError(f"the API's writer was interrupted: {error!r}")
    wrapped.__cause__ = error
    return wrapped

"""Group commit: write transactions that arrive together in one process share one database commit.

Each caller of ``Context.transaction()`` still runs its own unit of work, on its own session, one after
the other; the units queued at the same moment run inside one database transaction, each in its own
SAVEPOINT (so a failing unit rolls back alone and its caller gets its own exception), and one COMMIT
makes them all durable. No caller returns before that COMMIT has returned: nothing is acknowledged
before it is durable, and a failed COMMIT fails every caller of its group. A lone writer waits for
nobody: a group is whatever is already queued when a unit ends.
"""

from __future__ import annotations

import copy
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from engine.crashpoints import crashpoint
from storage import db as storage_db
from storage.db import transaction

__all__ = ["MAX_GROUP", "GroupCommit", "GroupFigures", "own_copy"]

#: At most this many units share one commit (a bound on the first unit's wait, not a target).
MAX_GROUP = 64


@dataclass(frozen=True)
class GroupFigures:
    """What the committer did since it was built: commits issued, the units they carried, the largest
    group; and how many units wait for their turn now."""

    commits: int
    units: int
    largest: int
    waiting: int


@dataclass
class _Group:
    """One open database transaction and the units that ran in it."""

    connection: Connection
    root: RootTransaction
    units: int = 0  # units run (committed or refused)
    pending: int = 0  # units that succeeded and wait for the commit
    broken: BaseException | None = None  # the transaction cannot be committed any more
    error: BaseException | None = None  # what the commit (or the breakage) raised
    # the wake-up locks of the callers blocked until the group is closed (``_Thread.wake``)
    waiters: list[threading.Lock] = field(default_factory=list)


class _Thread(threading.local):
    """What one thread keeps between its units: whether it is inside a unit or a batch, and its wake-up.

    ``wake`` is a plain lock the thread holds whenever it is not waiting; it waits (for its turn, or
    for its group's commit) by acquiring it again, and whoever hands it the turn or closes its group
    releases it. One lock per thread, made once: a hand-over is one release and one acquire (no
    ``threading.Event``, whose condition variable costs a second lock and several Python calls on
    both sides, each with the GIL held).
    """

    def __init__(self) -> None:
        self.inside = False  # running a unit: a nested write transaction is a separate one
        self.batch = False  # holds the turn for a batch() block
        self.lost: BaseException | None = None  # a batch's decided units were lost with their group
        self.durable: list[Session] = []  # a batch's units, told once the batch has committed
        self.wake = _held_lock()


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


class GroupCommit:
    """Runs write units one at a time (the baton) and commits the units queued together once.

    ``enabled=False``: every unit is its own transaction, as ``storage.db.transaction`` does.
    ``wait_seconds``: how long a unit waits for its turn (default: SQLite's busy timeout, read when
    it waits).

    Hand-overs are the cost that matters here: every unit but the first of a group starts when the
    unit before it hands over the turn, and every caller but the committing one is woken once more
    when its group is closed. Each is a release of the waiting thread's own lock (``_Thread.wake``)
    done as late as possible: the turn just before the giver blocks on its own lock (which lets go
    of the GIL the woken thread wants), the commit's waiters all in one pass by the committing
    thread after the COMMIT.
    """

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        *,
        enabled: bool = True,
        max_group: int = MAX_GROUP,
        wait_seconds: float | None = None,
    ):
        self._engine = engine
        self._sessions = sessions
        self.enabled = enabled
        self._max_group = max_group
        self._wait_seconds = wait_seconds
        self._mutex = threading.Lock()
        self._busy = False  # a thread holds the baton (runs a unit or commits a group)
        self._queue: deque[threading.Lock] = deque()  # wake-ups of the threads waiting, in order
        self._group: _Group | None = None  # the open transaction units join
        self._local = _Thread()
        self._commits = self._units = self._largest = 0

    def figures(self) -> GroupFigures:
        with self._mutex:
            return GroupFigures(self._commits, self._units, self._largest, len(self._queue))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: its own session, committed (durably) with the units queued beside it."""
        local = self._local
        if not self.enabled or local.inside:
            # A unit that opens another write transaction gets a separate one, as before grouping
            # (on SQLite it then waits for the write lock its own group holds, as it always did).
            with transaction(self._sessions) as s:
                yield s
            return
        batch = local.batch  # this thread holds the turn already
        if batch and local.lost is not None:
            # Decided units of this batch were lost with their group: the batch fails as a whole, so
            # no later unit may become durable (its caller would be told it failed).
            raise own_copy(local.lost)
        if not batch:
            self._take_baton()
        try:
            group = self._open()
        except BaseException:
            if not batch:
                self._pass_baton()
            raise
        first = group.units == 0
        # The first unit runs in the transaction itself (it alone has seen nothing uncommitted; if it
        # fails, the transaction is rolled back); every later one in a savepoint of its own. The
        # session never commits: it flushes, and its after_commit hooks run once the group's COMMIT
        # has made the unit durable (``_durable``).
        session = self._sessions(bind=group.connection, join_transaction_mode="rollback_only")
        savepoint = None
        ok = False
        local.inside = True
        try:
            savepoint = None if first else group.connection.begin_nested()
            session.begin()
            yield session
            session.flush()
            if savepoint is not None:
                savepoint.commit()  # RELEASE SAVEPOINT (nothing is durable yet)
            ok = True
        except BaseException:
            try:
                session.rollback()  # to the unit's savepoint, or the whole transaction if first
                if savepoint is not None and savepoint.is_active:
                    savepoint.rollback()
            except BaseException as exc:  # noqa: BLE001 - the connection is gone: the group cannot commit
                group.broken = exc
            raise
        finally:
            local.inside = False
            try:
                session.close()
            finally:
                if batch:
                    self._finish_in_batch(group, ok, first)
                    if ok:
                        local.durable.append(session)
                else:
                    # A refusal by the first unit read committed data only: its caller hears it at
                    # once. A later one may have read what earlier units wrote (a claimed delivery,
                    # a taken key), so its caller waits until the group's fate is known.
                    self._finish(group, ok, local.wake if ok or not first else None)
                    if group.error is not None and (ok or not first):
                        raise own_copy(group.error)
                    if ok:
                        _durable(session)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The write transactions this thread opens in the block are one group (a batch call, an import).

        Each is still decided and refused on its own (its own savepoint and exception), and all of them
        are committed once, when the block ends: none is durable before, so acknowledge none before
        the block returns. A failed commit raises here; an exception escaping the block rolls the whole
        batch back. Other writers wait for the block (bounded like SQLite's busy timeout, 30 s): keep a
        batch to a few thousand changes.
        """
        local = self._local
        if not self.enabled or local.inside or local.batch:
            yield
            return
        self._take_baton()
        local.batch, local.lost, local.durable = True, None, []
        escaped = False
        try:
            yield
        except BaseException as exc:
            escaped = True
            if self._group is not None:
                self._group.broken = exc  # rolled back below, the exception goes on as it is
            raise
        finally:
            local.batch = False
            group, self._group = self._group, None
            try:
                if group is not None:
                    self._close(group)
            finally:
                self._pass_baton()
            error = local.lost or (group.error if group is not None else None)
            if error is not None and not escaped:
                raise own_copy(error)
            if not escaped:
                for session in local.durable:
                    _durable(session)

    def _finish_in_batch(self, group: _Group, ok: bool, first: bool) -> None:
        with self._mutex:
            group.units += 1
            group.pending += ok
        if (not ok and first) or group.broken is not None:
            self._group = None  # rolled back (or unusable): the batch's next unit opens a new one
            self._close(group)
            if group.pending:
                self._local.lost = group.error  # decided units lost: the batch must fail

    # -- the baton ------------------------------------------------------------------------------
    def _take_baton(self) -> None:
        local = self._local
        seconds = self._wait_seconds
        if seconds is None:
            seconds = storage_db.BUSY_TIMEOUT_MS / 1000
        wake = local.wake
        with self._mutex:
            if not self._busy:
                self._busy = True
                return
            self._queue.append(wake)
        try:
            if wake.acquire(timeout=seconds):
                return
            if not self._unqueue(wake):
                wake.acquire()  # handed over just as the wait ran out: the release is under way
                return
        except BaseException:  # interrupted while blocked (KeyboardInterrupt in the main thread)
            local.wake = _held_lock()  # a release still under way goes to the old lock
            if not self._unqueue(wake):
                self._pass_baton()  # it was handed to this thread: on to the next one
            raise
        raise OperationalError(
            "BEGIN IMMEDIATE (group commit)",
            None,
            sqlite3.OperationalError(
                f"database is locked: another unit of work held the write turn for {seconds:g} s"
            ),
        )

    def _unqueue(self, wake: threading.Lock) -> bool:
        """Take a waiting thread out of the queue; False: too late, the turn was handed to it."""
        with self._mutex:
            try:
                self._queue.remove(wake)
            except ValueError:
                return False
            return True

    def _pass_baton(self) -> None:
        with self._mutex:
            if not self._queue:
                self._busy = False
                return
            wake = self._queue.popleft()
        wake.release()

    def _open(self) -> _Group:
        if self._group is None:
            connection = self._engine.connect()
            try:
                root = connection.begin()  # SQLite: BEGIN IMMEDIATE (storage.db)
            except BaseException:
                connection.close()
                raise
            self._group = _Group(connection, root)
        return self._group

    def _finish(self, group: _Group, ok: bool, wait: threading.Lock | None) -> None:
        """A unit ended: hand the baton to the next unit of this group, or commit the group.

        ``wait``: the caller's wake-up if it must wait for the group to be closed; then this returns
        once it is (``group.error`` says how)."""
        with self._mutex:
            group.units += 1
            group.pending += ok
            if (
                group.pending
                and group.broken is None
                and self._queue
                and group.units < self._max_group
            ):
                turn = self._queue.popleft()
                if wait is not None:
                    group.waiters.append(wait)
            else:
                turn = None
                self._group = None  # closed: the next unit opens a new transaction
        if turn is not None:
            # The next unit's thread wakes and wants the GIL, which this one lets go of in the
            # acquire just below: nothing runs between the two.
            turn.release()
            if wait is not None:
                try:
                    wait.acquire()  # until the committing thread releases it
                except BaseException:  # interrupted: the caller learns nothing, nor acknowledges
                    self._local.wake = _held_lock()  # the group's release goes to the old lock
                    raise
            return
        try:
            self._close(group)
        finally:
            self._pass_baton()

    def _close(self, group: _Group) -> None:
        try:
            if group.broken is not None:
                group.error = group.broken
            elif group.pending:
                if group.pending > 1:
                    crashpoint("before_group_commit")  # crash tests: decided, queued, not durable
                group.root.commit()
                with self._mutex:
                    self._commits += 1
                    self._units += group.pending
                    self._largest = max(self._largest, group.pending)
            elif group.root.is_active:
                group.root.rollback()
        except BaseException as exc:  # noqa: BLE001 - every caller of the group is told
            group.error = exc
        finally:
            try:
                if group.error is not None:
                    _reset(group.connection)
                group.connection.close()
            finally:
                for wake in group.waiters:  # the group's fate is known: its callers may return
                    wake.release()


def _durable(session: Session) -> None:
    """The unit is committed: its session's after_commit hooks run now, in the caller's thread."""
    session.dispatch.after_commit(session)


def _reset(connection: Connection) -> None:
    """After a failed commit the driver's connection may still hold the transaction: roll it back
    there, or discard the connection if even that fails (the database then drops what it held)."""
    try:
        dbapi = connection.connection.dbapi_connection
        if dbapi is None:
            raise RuntimeError("no driver connection")
        dbapi.rollback()
    except Exception:  # noqa: BLE001 - a connection nobody can vouch for is not reused
        connection.invalidate()


def own_copy(exc: BaseException) -> BaseException:
    """Each caller raises its own copy: one exception object raised in many threads mixes tracebacks."""
    try:
        clone = copy.copy(exc)
    except Exception:  # noqa: BLE001 - an exception that cannot be copied is raised as it is
        return exc
    clone.__cause__ = exc.__cause__
    return clone.with_traceback(None)

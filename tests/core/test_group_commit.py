"""Group commit: changes arriving together are decided one by one and committed together.

Each test holds one change open (its ``only_if`` waits under the deal's lock) until the others have
queued behind it, so the group is known without timing: then every change of the group is either
committed with its own firings or refused alone, and nothing is acknowledged before the one commit.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

import storage.db
from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from engine.errors import InvalidChange
from storage import repositories as repo
from storage.db import is_contention, read_transaction
from storage.models import Deal
from tests.conftest import SAMPLE_RULES
from tests.support.sessions import db_session


@pytest.fixture
def grouped(backend: str, clock: VirtualClock) -> Iterator[Conveyor]:
    """Conveyor with group commit on (PostgreSQL too, where it is off by default)."""
    c = Conveyor(backend, clock=clock, group_commit=True)
    c.load_rules_dir(SAMPLE_RULES)
    c.add_manager("Olena", "+380501110001")
    yield c
    c.close()


def _qualifying(c: Conveyor, n: int) -> list[int]:
    return [
        c.create_deal(
            "techflow", title=f"Lead {i}", stage="qualification", fields={"budget": "yes"}
        )
        for i in range(n)
    ]


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _run(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread; returns each one's result or the exception it raised."""
    out: list[Any] = [None] * len(calls)

    def one(i: int) -> None:
        try:
            out[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def _group(
    c: Conveyor,
    holder: int,
    others: list[Callable[[], Any]],
    *,
    before_commit: Callable[[], None] = lambda: None,
) -> list[Any]:
    """The holder's event stays open until ``others`` wait behind it; all of them end in one group."""
    entered = threading.Event()

    def hold(_s: Any, _deal: Any, _rs: Any) -> bool:
        entered.set()  # the holder has the write turn: whoever comes now queues behind it
        _wait(lambda: c.group_commit.figures().waiting >= len(others), "the others to queue")
        before_commit()
        return True

    results: list[Any] = []

    def holder_call() -> None:
        try:
            results.append(c.deals.record_event(holder, "client_replied", only_if=hold))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            results.append(exc)

    first = threading.Thread(target=holder_call)
    first.start()
    _wait(entered.is_set, "the holder's turn")
    out = _run(others)
    first.join(60)
    return [results[0] if results else None, *out]


def _fired(c: Conveyor, deal_id: int) -> set[str]:
    with db_session(c) as s:
        return {rule for rule, _occurrence in repo.fired_occurrences(s, deal_id)}


def test_changes_queued_together_share_one_commit_and_each_fires_its_own_rules(grouped):
    c = grouped
    holder, *deals = _qualifying(c, 5)
    before = c.group_commit.figures()
    out = _group(c, holder, [lambda d=d: c.update_deal(d, {"need": "no"}) for d in deals])
    assert out == [True, None, None, None, None]
    after = c.group_commit.figures()
    assert (after.commits - before.commits, after.units - before.units) == (1, 5)
    assert after.largest == 5
    for d in deals:
        assert c.deal(d).fields["need"] == "no"
        assert "qualification_no" in _fired(c, d)


def test_a_refused_change_in_a_group_is_refused_alone(grouped):
    c = grouped
    holder, good_1, bad, good_2 = _qualifying(c, 4)
    out = _group(
        c,
        holder,
        [
            lambda: c.update_deal(good_1, {"need": "no"}),
            lambda: c.update_deal(bad, {"need": "no", "no_such_field": 1}),
            lambda: c.update_deal(good_2, {"need": "no"}),
        ],
    )
    assert out[0] is True and out[1] is None and out[3] is None
    assert isinstance(out[2], InvalidChange) and "no_such_field" in str(out[2])
    for d in (good_1, good_2):
        assert c.deal(d).fields["need"] == "no" and "qualification_no" in _fired(c, d)
    assert "need" not in c.deal(bad).fields and "qualification_no" not in _fired(c, bad)


def test_a_unique_violation_rolls_back_only_its_own_unit(grouped):
    c = grouped
    (holder,) = _qualifying(c, 1)

    def add(name: str) -> int:
        with c.group_commit.transaction() as s:
            return repo.add_manager(s, name, "").id

    # "Olena" exists: the INSERT fails inside its own savepoint, the units around it commit.
    out = _group(c, holder, [lambda: add("Taras"), lambda: add("Olena"), lambda: add("Iryna")])
    assert out[0] is True and isinstance(out[1], int) and isinstance(out[3], int)
    assert isinstance(out[2], IntegrityError)
    assert {m.name for m in c.deals.managers()} == {"Olena", "Taras", "Iryna"}
    assert "client_replied" in c.deal(holder).signals


def test_a_failed_commit_fails_every_caller_of_its_group_and_saves_none(grouped):
    c = grouped
    holder, *deals = _qualifying(c, 4)

    def boom(_conn: Any) -> None:
        raise RuntimeError("disk on fire")

    out = _group(
        c,
        holder,
        [lambda d=d: c.update_deal(d, {"need": "no"}) for d in deals],
        before_commit=lambda: sa.event.listen(c.engine, "commit", boom),
    )
    sa.event.remove(c.engine, "commit", boom)
    assert all(isinstance(r, RuntimeError) and "disk on fire" in str(r) for r in out), out
    for d in [holder, *deals]:
        state = c.deal(d)
        assert "need" not in state.fields and "client_replied" not in state.signals
        assert _fired(c, d) == set()
    # the committer is not stuck: the next change commits
    c.update_deal(deals[0], {"need": "no"})
    assert "qualification_no" in _fired(c, deals[0])


def test_a_lone_writer_commits_at_once(grouped):
    c = grouped
    (deal,) = _qualifying(c, 1)
    before = c.group_commit.figures()
    c.update_deal(deal, {"need": "yes"})
    after = c.group_commit.figures()
    assert (after.commits - before.commits, after.units - before.units) == (1, 1)
    with db_session(c) as s:
        assert s.get(Deal, deal).fields["need"] == "yes"


def test_a_unit_that_opens_another_transaction_gets_a_separate_one(backend, clock):
    if backend.startswith("sqlite"):
        pytest.skip("SQLite has one writer: a second write transaction waits for the first")
    c = Conveyor(backend, clock=clock, group_commit=True)
    try:
        with c.group_commit.transaction() as outer:
            outer.execute(sa.text("SELECT 1"))
            with c.group_commit.transaction() as inner:  # same thread: not queued behind itself
                assert inner.execute(sa.text("SELECT 2")).scalar() == 2
    finally:
        c.close()


def test_a_batch_is_one_commit_and_refuses_a_bad_change_alone(grouped):
    c = grouped
    bad, *good = _qualifying(c, 4)
    before = c.group_commit.figures()
    refused = []
    with c.group_commit.batch():
        for d in [bad, *good]:  # the first unit of the batch fails: the rest still go together
            try:
                c.update_deal(d, {"need": "no", **({"no_such_field": 1} if d == bad else {})})
            except InvalidChange:
                refused.append(d)
        with read_transaction(c.engine) as s:  # another connection: decided, not yet committed
            assert "need" not in s.get(Deal, good[0]).fields
    after = c.group_commit.figures()
    assert refused == [bad]
    assert (after.commits - before.commits, after.units - before.units) == (1, 3)
    for d in good:
        assert "qualification_no" in _fired(c, d)
    assert _fired(c, bad) == set()


def test_a_batch_whose_commit_fails_raises_and_saves_nothing(grouped):
    c = grouped
    deals = _qualifying(c, 3)

    def boom(_conn: Any) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        with c.group_commit.batch():
            for d in deals:
                c.update_deal(d, {"need": "no"})
            sa.event.listen(c.engine, "commit", boom)
    sa.event.remove(c.engine, "commit", boom)
    assert all(_fired(c, d) == set() and "need" not in c.deal(d).fields for d in deals)


def test_a_writer_kept_waiting_for_its_turn_hears_the_database_is_busy(grouped, monkeypatch):
    c = grouped
    monkeypatch.setattr(storage.db, "BUSY_TIMEOUT_MS", 200)  # as SQLite's own busy timeout
    held, other = _qualifying(c, 2)
    entered, release = threading.Event(), threading.Event()

    def hold(_s: Any, _deal: Any, _rs: Any) -> bool:
        entered.set()
        release.wait(30)
        return True

    holder = threading.Thread(
        target=lambda: c.deals.record_event(held, "client_replied", only_if=hold)
    )
    holder.start()
    try:
        _wait(entered.is_set, "the holder's turn")
        with pytest.raises(OperationalError, match="database is locked") as raised:
            c.update_deal(other, {"need": "no"})
        assert is_contention(
            raised.value
        )  # the doors answer "busy, try again", as for SQLite's lock
    finally:
        release.set()
        holder.join(60)
    assert "need" not in c.deal(other).fields and "client_replied" in c.deal(held).signals


def test_after_commit_hooks_run_once_the_change_is_durable(grouped):
    c = grouped
    (deal,) = _qualifying(c, 1)
    seen: list[Any] = []

    def hook(_session: Session) -> None:  # what another connection sees when the hook runs
        with read_transaction(c.engine) as s:
            seen.append(s.get(Deal, deal).fields.get("need"))

    sa.event.listen(Session, "after_commit", hook)
    try:
        c.update_deal(deal, {"need": "no"})
    finally:
        sa.event.remove(Session, "after_commit", hook)
    assert seen == ["no"]


def test_a_writer_interrupted_while_waiting_for_its_turn_leaves_the_turn_to_the_others(grouped):
    """Ctrl-C (here a signal whose handler raises) lands in the main thread while it waits for its
    turn: its change is not made, and the turn still goes round (nobody is left waiting for it)."""

    class Interrupted(Exception):
        pass

    def interrupt(_signum: int, _frame: Any) -> None:
        raise Interrupted

    c = grouped
    held, mine, later = _qualifying(c, 3)
    entered, release = threading.Event(), threading.Event()

    def hold(_s: Any, _deal: Any, _rs: Any) -> bool:
        entered.set()
        release.wait(30)
        return True

    def signal_once_queued() -> None:
        _wait(lambda: c.group_commit.figures().waiting >= 1, "the main thread to queue")
        time.sleep(0.2)  # into its blocking wait (not timed: any moment inside the wait will do)
        signal.raise_signal(signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    holder = threading.Thread(
        target=lambda: c.deals.record_event(held, "client_replied", only_if=hold)
    )
    holder.start()
    try:
        _wait(entered.is_set, "the holder's turn")
        threading.Thread(target=signal_once_queued).start()
        with pytest.raises(Interrupted):
            c.update_deal(mine, {"need": "no"})
        assert c.group_commit.figures().waiting == 0
    finally:
        signal.signal(signal.SIGUSR1, previous)
        release.set()
        holder.join(60)
    assert "client_replied" in c.deal(held).signals
    assert "need" not in c.deal(mine).fields
    c.update_deal(later, {"need": "no"})  # the turn is free again: this commits at once
    assert "qualification_no" in _fired(c, later)


def test_savepoints_on_sqlite_go_to_the_driver_and_still_roll_back_alone(tmp_path):
    """storage.db sends SAVEPOINT / RELEASE / ROLLBACK TO as plain text: SQLAlchemy still tracks
    them, a rollback to one undoes only its part, and a driver error is SQLAlchemy's."""
    engine = storage.db.make_engine(f"sqlite:///{tmp_path / 'sp.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            kept = conn.begin_nested()
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
            kept.commit()
            dropped = conn.begin_nested()
            conn.exec_driver_sql("INSERT INTO t VALUES (3)")
            assert conn.in_nested_transaction()
            dropped.rollback()
            with pytest.raises(OperationalError, match="no such savepoint: nope"):
                engine.dialect.do_release_savepoint(conn, "nope")
        with engine.connect() as conn:
            assert [r[0] for r in conn.exec_driver_sql("SELECT x FROM t ORDER BY x")] == [1, 2]
    finally:
        engine.dispose()


def test_a_batch_that_lost_decided_changes_makes_no_later_change_durable(grouped):
    """A unit whose rollback breaks its group loses the units decided before it: the batch fails, and
    no unit after it may be committed in a new group (its caller — an HTTP request answered 5xx —
    would be told it failed while its change was there)."""
    c = grouped
    first, bad, later = _qualifying(c, 3)

    def broken(*_args: Any) -> None:
        raise RuntimeError("connection dropped")

    heard: dict[int, BaseException] = {}
    with pytest.raises(RuntimeError, match="connection dropped"):
        with c.group_commit.batch():
            c.update_deal(first, {"need": "no"})
            sa.event.listen(c.engine, "rollback_savepoint", broken)
            try:
                c.update_deal(bad, {"need": "no", "no_such_field": 1})
            except InvalidChange as exc:
                heard[bad] = exc
            finally:
                sa.event.remove(c.engine, "rollback_savepoint", broken)
            try:
                c.update_deal(later, {"need": "no"})
            except RuntimeError as exc:
                heard[later] = exc
    assert isinstance(heard[bad], InvalidChange)
    assert isinstance(heard[later], RuntimeError)  # refused at once: the batch was already lost
    for d in (first, bad, later):
        assert _fired(c, d) == set() and "need" not in c.deal(d).fields

"""The builder under trouble: a missing database, the engine holding SQLite's write lock, odd amounts.

Pages run in AppTest on real SQLite files; the lock is a real ``BEGIN IMMEDIATE`` held by a second
connection, as ``conveyor engine`` holds it while it writes. A page must show one clear sentence,
never a traceback, and reads must not wait for the writer at all.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError
from streamlit.testing.v1 import AppTest

import storage.db
from builder.state import BUSY, error_message
from engine.core.conveyor import Conveyor
from storage import repositories as repo
from storage.db import sqlite_path
from storage.errors import DatabaseUnavailable, StorageError
from tests.builder import test_manager_pages as manager_pages
from tests.support.sessions import db_read_session, db_session

# The manager pages' fixtures: a fresh copy of the demo database per test, found through CONVEYOR_DB.
page = manager_pages.page

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["designer", "rule_editor", "versions", "deals", "actions_review", "dry_run", "analytics"]


def _failing_page(kind: str) -> None:
    # A page whose render fails with a real exception, behind the same boundary every page uses.
    from sqlalchemy import create_engine, text

    from builder.state import page_boundary

    @page_boundary
    def render() -> None:
        if kind == "integrity":
            engine = create_engine("sqlite://")
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (k TEXT UNIQUE)"))
                conn.execute(text("INSERT INTO t VALUES ('D-2')"))
                conn.execute(text("INSERT INTO t VALUES ('D-2')"))
        raise RuntimeError("boom at the third step")

    render()


@contextmanager
def write_lock(c: Conveyor) -> Iterator[sqlite3.Connection]:
    """Another process's open write transaction (what the engine holds while it writes)."""
    con = sqlite3.connect(sqlite_path(str(c.engine.url)), isolation_level=None, timeout=5)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("UPDATE deals SET title = title || ' (being written)' WHERE id = 1")
        yield con
    finally:
        con.rollback()
        con.close()


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# -- reading under a writer's lock ---------------------------------------------------------------------
def test_read_session_runs_while_another_connection_holds_the_write_lock(
    sqlite_conveyor, monkeypatch
):
    deal = sqlite_conveyor.create_deal("techflow", title="Acme")
    monkeypatch.setattr(storage.db, "BUSY_TIMEOUT_MS", 200)  # so the contrast below fails fast
    c = Conveyor(str(sqlite_conveyor.engine.url), migrate=False)
    try:
        with write_lock(c):
            with db_read_session(c) as s:
                row = repo.get_deal(s, deal)
                assert row.title == "Acme"  # the writer's uncommitted change is not visible
            with pytest.raises(OperationalError, match="locked"), db_session(c) as s:
                repo.get_deal(s, deal)  # a write transaction has to wait for the lock and gives up
        assert row.title == "Acme"  # loaded values stay readable after the read session closed
    finally:
        c.close()


def test_read_session_refuses_to_write_instead_of_dropping_the_change(sqlite_conveyor):
    deal = sqlite_conveyor.create_deal("techflow", title="Acme")
    with (
        pytest.raises(StorageError, match="read-only session cannot write"),
        db_read_session(sqlite_conveyor) as s,
    ):
        repo.get_deal(s, deal).title = "Changed"
        s.flush()
    assert sqlite_conveyor.deal(deal).title == "Acme"


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_while_the_engine_holds_the_write_lock(demo_db, name):
    at = page(name).run()  # first run opens the database (migrations check) without the lock
    assert not at.exception, [e.value for e in at.exception]
    with write_lock(demo_db):
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert not _errors(at)
    assert at.title[0].value  # the page itself was drawn, not an error box instead of it


def test_a_change_while_the_database_is_locked_says_busy_and_changes_nothing(demo_db, monkeypatch):
    monkeypatch.setattr(
        storage.db, "BUSY_TIMEOUT_MS", 300
    )  # the builder's engine gives up after 0.3 s
    deal = repo_first_open_deal(demo_db)
    at = page("deals")
    at.session_state["deals_selected"] = deal
    at.run()
    assert not at.exception and not _errors(at)
    before = demo_db.deal(deal).signals
    with write_lock(demo_db):
        at.button(key=f"deals_ev_client_replied_{deal}").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert BUSY in _errors(at)
        assert not any("Traceback" in e for e in _errors(at))
    assert demo_db.deal(deal).signals == before


def repo_first_open_deal(c: Conveyor) -> int:
    with db_read_session(c) as s:
        return next(d.id for d in repo.list_deals(s, "techflow") if not d.closed)


# -- a database that cannot be opened ------------------------------------------------------------------
@pytest.mark.parametrize("name", PAGES)
def test_every_page_says_clearly_when_the_database_folder_does_not_exist(
    tmp_path, monkeypatch, name
):
    missing = tmp_path / "no-such-folder" / "conveyor.db"
    monkeypatch.setenv("CONVEYOR_DB", f"sqlite:///{missing}")
    at = page(name).run()
    assert not at.exception, [e.value for e in at.exception]
    [message] = _errors(at)
    assert message.startswith("The database is not available: cannot create SQLite database")
    assert str(missing.parent) in message and "CONVEYOR_DB" in message


def test_get_conveyor_turns_an_unopenable_file_into_database_unavailable(tmp_path, monkeypatch):
    from builder import state

    folder = tmp_path / "a-folder-not-a-file.db"
    folder.mkdir()  # the URL names a directory: SQLite cannot open it
    monkeypatch.setenv("CONVEYOR_DB", f"sqlite:///{folder}")
    with pytest.raises(DatabaseUnavailable, match="cannot open the database sqlite:///"):
        state.get_conveyor()


# -- the page error boundary ---------------------------------------------------------------------------
def test_an_unexpected_error_is_one_sentence_without_a_traceback(caplog):
    at = AppTest.from_function(_failing_page, args=("other",), default_timeout=30).run()
    assert not at.exception
    assert _errors(at) == ["Something went wrong: RuntimeError: boom at the third step"]
    assert any(r.exc_info for r in caplog.records)  # the traceback goes to the log, not to the user


def test_a_database_refusal_names_what_could_not_be_saved():
    at = AppTest.from_function(_failing_page, args=("integrity",), default_timeout=30).run()
    assert not at.exception
    [message] = _errors(at)
    assert message == "The change could not be saved: UNIQUE constraint failed: t.k"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")),
            BUSY,
        ),
        (
            OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such table: deals")),
            "The database could not be read or written: no such table: deals. Try again in a moment.",
        ),
        (
            DatabaseUnavailable("not a database URL: 'x'"),
            "The database is not available: not a database URL: 'x'. Check CONVEYOR_DB (or `conveyor builder --db`) "
            "and reload the page.",
        ),
    ],
    ids=["locked", "other-operational", "unavailable"],
)
def test_error_messages_are_sentences(exc, expected):
    assert error_message(exc) == expected


def test_integrity_error_message_keeps_the_driver_reason_only():
    engine = create_engine("sqlite://")
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k TEXT NOT NULL)"))
        conn.execute(text("INSERT INTO t VALUES (NULL)"))
    assert (
        error_message(info.value, "The deal")
        == "The deal could not be saved: NOT NULL constraint failed: t.k"
    )


# -- odd amounts on the deal card ----------------------------------------------------------------------
@pytest.mark.parametrize("amount", [-5.0, 1e300, math.inf], ids=["negative", "huge", "infinite"])
def test_deal_card_renders_a_stored_odd_amount(demo_db, amount):
    deal = repo_first_open_deal(demo_db)
    # Written underneath the engine, as data from before its range checks would be.
    con = sqlite3.connect(sqlite_path(str(demo_db.engine.url)))
    con.execute("UPDATE deals SET amount = ? WHERE id = ?", (amount, deal))
    con.commit()
    con.close()
    at = page("deals")
    at.session_state["deals_selected"] = deal
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not _errors(at)
    shown = at.number_input(key=f"deals_f_{deal}_amount").value
    assert shown == (None if math.isinf(amount) else amount)
    # The payment is a declared event carrying its amount into "Amount paid": that input starts empty.
    assert at.number_input(key=f"deals_ev_payment_received_{deal}_paid_amount").value is None
    if math.isinf(amount):
        assert any("cannot be edited here" in c.value for c in at.caption)


def test_importing_a_version_while_the_database_is_locked_says_busy_and_saves_nothing(
    demo_db, monkeypatch
):
    monkeypatch.setattr(storage.db, "BUSY_TIMEOUT_MS", 300)
    doc = json.loads((ROOT / "sample_rules" / "techflow.json").read_text(encoding="utf-8"))
    doc["name"] = "TechFlow B2B sales (imported)"
    before = len(demo_db.versions("techflow"))
    at = page("versions").run()
    at.text_area(key="versions:paste").set_value(json.dumps(doc, ensure_ascii=False)).run()
    assert not at.exception and not _errors(at)
    with write_lock(demo_db):
        at.button(key="versions:import_save").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert _errors(at) == [f"Not saved: {BUSY} Nothing was changed; try again."]
    assert len(demo_db.versions("techflow")) == before

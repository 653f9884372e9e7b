"""Bulk import (``Conveyor.imports``): the same deals, firings, outbox rows and due times as creating
each deal one by one, on SQLite and PostgreSQL; every bad row reported; strict and dry runs write
nothing; a re-run skips what the first run imported; one audit entry per import."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from engine.core.access import SYSTEM, Actor, ActorKind, Role
from engine.core.conveyor import Conveyor
from engine.core.import_checks import check_rows
from engine.core.imports import ImportInterrupted
from engine.document.validate import validate_document
from engine.errors import Forbidden
from storage.models import Deal, DealEvent, Firing, OutboxAction
from tests.conftest import SAMPLE_RULES

CONTRACT = {"company_name": "ТОВ Ромашка", "tax_id": "12345678", "billing_address": "Київ"}
ITEMS: list[dict[str, Any]] = [
    {"key": "L-1", "title": "Lead one", "phone": "+380501234567", "fields": {"source": "fair"}},
    {"key": "L-2", "stage": "qualification", "fields": {"budget": "no"}},
    {"key": "L-3", "stage": "qualification", "fields": {"budget": "yes", "authority": "yes"}},
    {"key": "L-4", "stage": "proposal", "amount": 1200.5},
    {"key": "L-5", "stage": "contract", "fields": CONTRACT},
    {"key": "L-6", "stage": "paid", "fields": {"paid_amount": 10}},
    {"title": "No key of its own", "manager": "Olena"},
    {"key": "L-8", "stage": "cold_call", "email": "a@example.com"},
    {"key": "L-9", "manager": "Petro", "fields": {"need": "yes"}},
]


def _create_one_by_one(c: Conveyor, items: list[dict[str, Any]]) -> None:
    for item in items:
        fields = dict(item.get("fields", {}))
        for name in ("phone", "email", "amount"):
            if name in item:
                fields[name] = item[name]
        c.create_deal(
            "techflow",
            key=item.get("key"),
            title=item.get("title", ""),
            stage=item.get("stage"),
            fields=fields,
            manager=item.get("manager"),
        )


def _snapshot(c: Conveyor) -> dict[str, Any]:
    with c.engine.connect() as con:
        deals = {d.id: d.key for d in con.execute(select(Deal.id, Deal.key))}
        out: dict[str, Any] = {}
        for d in con.execute(select(Deal).order_by(Deal.id)):
            out[d.key] = {
                k: getattr(d, k)
                for k in (
                    "title",
                    "phone",
                    "email",
                    "amount",
                    "stage",
                    "closed",
                    "stage_visit",
                    "stage_entered_at",
                    "activity_seq",
                    "last_activity_at",
                    "manager_id",
                    "signals",
                    "fields",
                    "created_at",
                    "updated_at",
                    "next_due_at",
                )
            }
            out[d.key]["firings"] = []
            out[d.key]["outbox"] = []
            out[d.key]["history"] = [
                (e.kind, e.data.get("stage"))
                for e in con.execute(
                    select(DealEvent).where(DealEvent.deal_id == d.id).order_by(DealEvent.id)
                )
            ]
        for f in con.execute(select(Firing).order_by(Firing.rule_id)):
            out[deals[f.deal_id]]["firings"].append(
                (f.rule_id, f.occurrence, f.values, f.due_at, f.fired_at, f.trigger, f.chain)
            )
        for o in con.execute(
            select(OutboxAction, Firing.rule_id)
            .join(Firing)
            .order_by(Firing.rule_id, OutboxAction.seq)
        ):
            out[deals[o.deal_id]]["outbox"].append(
                (o.rule_id, o.seq, o.action, o.params, o.kind, o.status, o.next_attempt_at)
            )
    return out


def _twin(url: str, clock: Any) -> Conveyor:
    c = Conveyor(url, clock=clock)
    c.load_rules_dir(SAMPLE_RULES)
    c.add_manager("Olena", "+380501110001")
    c.add_manager("Petro", "+380501110002")
    return c


def test_imported_deals_get_exactly_the_firings_and_due_times_of_one_by_one_creation(
    conveyor: Conveyor, fresh_database: Any, clock: Any
) -> None:
    report = conveyor.imports.import_items("techflow", ITEMS)
    assert (report.imported, report.skipped, report.problems) == (len(ITEMS), 0, [])
    one_by_one = _twin(fresh_database(), clock)
    try:
        _create_one_by_one(one_by_one, ITEMS)
        imported, expected = _snapshot(conveyor), _snapshot(one_by_one)
        assert imported.keys() == expected.keys()
        for key in expected:
            assert imported[key] == expected[key], key
        assert any(d["next_due_at"] for d in expected.values())  # the tick has something to do
        # Time passes: ticks fire the same time rules on both, and leave the same timers.
        for hours in (23, 2, 24, 48):
            clock.advance(timedelta(hours=hours))
            a, b = conveyor.tick(), one_by_one.tick()
            assert (a.deals_examined, a.rules_fired) == (b.deals_examined, b.rules_fired)
            assert _snapshot(conveyor) == _snapshot(one_by_one)
    finally:
        one_by_one.close()


def test_every_bad_row_is_reported_and_the_good_ones_imported(conveyor: Conveyor) -> None:
    items = [
        {"key": "OK-1"},
        {
            "key": "BAD-1",
            "stage": "qualifcation",
            "fields": {"budget": "maybe", "paid_amount": "x"},
        },
        {"key": "BAD-2", "stage": "contract", "fields": {"company_name": "Acme"}},
        {"key": "OK-1"},
        {"key": "BAD-4", "manager": "Nobody", "fields": {"colour": "red"}},
        {"key": "D-77"},
    ]
    report = conveyor.imports.import_items("techflow", items)
    assert report.imported == 1 and report.keys == ["OK-1"]
    where = [(p.row, p.column) for p in report.problems]
    assert where == [
        (1, "stage"),
        (1, "fields.budget"),
        (1, "fields.paid_amount"),
        (2, "stage"),
        (3, "key"),
        (4, "fields.colour"),
        (4, "manager"),
        (5, "key"),
    ]
    text = {(p.row, p.column): p.message for p in report.problems}
    assert "did you mean 'qualification'" in text[(1, "stage")]
    assert "not one of its options" in text[(1, "fields.budget")]
    assert "tax_id" in text[(2, "stage")] or "tax id" in text[(2, "stage")]
    assert "first in item 0" in text[(3, "key")]
    assert "no manager named 'Nobody'" in text[(4, "manager")]


@pytest.mark.parametrize("flags", [{"dry_run": True}, {"strict": True}], ids=["dry-run", "strict"])
def test_a_dry_run_or_a_strict_import_with_a_bad_row_writes_nothing(
    conveyor: Conveyor, flags: dict[str, bool]
) -> None:
    before = _snapshot(conveyor)
    report = conveyor.imports.import_items(
        "techflow", [{"key": "A-1"}, {"key": "A-2", "fields": {"budget": "maybe"}}], **flags
    )
    assert [p.row for p in report.problems] == [1]
    assert report.imported == (1 if flags.get("dry_run") else 0)
    assert _snapshot(conveyor) == before
    assert not [e for e in conveyor.audit.entries() if e.kind == "deals_imported"]


def test_a_rerun_skips_the_rows_already_imported_and_one_audit_entry_per_import(
    conveyor: Conveyor,
) -> None:
    first = conveyor.imports.import_items("techflow", [{"key": "R-1"}, {"key": "R-2"}])
    second = conveyor.imports.import_items(
        "techflow", [{"key": "R-1"}, {"key": "R-2"}, {"key": "R-3"}]
    )
    assert (first.imported, second.imported, second.skipped) == (2, 1, 2)
    entries = [e for e in conveyor.audit.entries() if e.kind == "deals_imported"]
    assert len(entries) == 2
    assert {e.detail["import"] for e in entries} == {first.import_id, second.import_id}
    assert entries[0].detail["imported"] in (1, 2)


def test_chunks_commit_on_their_own(conveyor: Conveyor) -> None:
    items = [{"key": f"C-{i}"} for i in range(25)]
    seen: list[int] = []
    report = conveyor.imports.import_csv(
        ("key\n" + "\n".join(i["key"] for i in items)).encode(),
        "techflow",
        chunk=10,
        progress=lambda done, total: seen.append(done),
    )
    assert (report.imported, report.chunks, seen) == (25, 3, [10, 20, 25])


def test_a_viewer_may_not_import_and_a_manager_imports_deals_for_themselves(
    conveyor: Conveyor,
) -> None:
    viewer = Actor(ActorKind.USER, "vera", Role.VIEWER)
    with pytest.raises(Forbidden, match="viewer role may not create and update deals"):
        conveyor.imports.import_items("techflow", [{"key": "V-1"}], actor=viewer)
    olena = next(m for m in conveyor.deals.managers() if m.name == "Olena")
    own = Actor(ActorKind.USER, "olena", Role.MANAGER, manager_id=olena.id, sees_team=False)
    report = conveyor.imports.import_items(
        "techflow", [{"key": "M-1"}, {"key": "M-2", "manager": "Petro"}], actor=own
    )
    assert report.keys == ["M-1"] and [p.column for p in report.problems] == ["manager"]
    assert conveyor.deal(conveyor.deal_id("M-1")).manager_id == olena.id


def test_an_import_that_stops_keeps_its_whole_chunks_and_a_rerun_imports_the_rest(
    conveyor: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.core.imports as imports

    real, calls = imports.decide_many, []

    def failing_second_chunk(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(imports, "decide_many", failing_second_chunk)
    data = ("key\n" + "\n".join(f"S-{i}" for i in range(25))).encode()
    with pytest.raises(ImportInterrupted, match="stopped after 10 deals in 1 chunks"):
        conveyor.imports.import_csv(data, "techflow", chunk=10)
    with conveyor.engine.connect() as con:
        assert len(list(con.execute(select(Deal.id)))) == 10
    monkeypatch.setattr(imports, "decide_many", real)
    again = conveyor.imports.import_csv(data, "techflow", chunk=10)
    assert (again.imported, again.skipped) == (15, 10)


def test_a_rerun_skips_keys_with_quotes_brackets_and_any_script_on_both_backends(
    conveyor: Conveyor,
) -> None:
    # The keys already there are looked up in one bound array (SQLite json_each, PostgreSQL ANY).
    keys = ["it's", 'say "hi"', "back\\slash", "[1, 2]", "Ключ-1", "κλειδί", "🔑-1", "%_"]
    first = conveyor.imports.import_items("techflow", [{"key": k} for k in keys])
    again = conveyor.imports.import_items("techflow", [{"key": k} for k in [*keys, "new"]])
    assert (first.imported, again.imported, again.skipped, again.keys) == (8, 1, 8, ["new"])


def test_an_import_leaves_every_connection_its_own_cache_and_checkpoints_and_the_wal_written_back(
    sqlite_conveyor: Conveyor,
) -> None:
    c = sqlite_conveyor
    engine = c.engine
    idle = [engine.raw_connection() for _ in range(3)]
    before = [
        (
            raw.driver_connection.execute("PRAGMA cache_size").fetchone(),
            raw.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone(),
        )
        for raw in idle
    ]
    for raw in idle:
        raw.close()
    data = ("key;title\n" + "\n".join(f"W-{i};Lead {i}" for i in range(500))).encode()
    report = c.imports.import_csv(data, "techflow", chunk=200)
    assert (report.imported, report.chunks) == (500, 3)
    # Every connection in the pool (the chunks' one among them) is back to its own settings.
    held = [engine.raw_connection() for _ in range(engine.pool.checkedin() or 1)]
    try:
        after = {
            (
                raw.driver_connection.execute("PRAGMA cache_size").fetchone(),
                raw.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone(),
            )
            for raw in held
        }
    finally:
        for raw in held:
            raw.close()
    assert after == set(before) and len(after) == 1
    # The import wrote the WAL back at its end (a few hundred pages: SQLite alone would have waited
    # for 1,000): the database file holds every page itself.
    path = engine.url.database
    assert path is not None
    with engine.connect() as con:
        pages = con.exec_driver_sql("PRAGMA page_count").scalar_one()
        size = con.exec_driver_sql("PRAGMA page_size").scalar_one()
    assert Path(path).stat().st_size == pages * size


# A cell as a spreadsheet may hold it: mostly plain text, sometimes a refused character, a generated
# key's shape, padding, or too long for its column.
_CELL = st.one_of(
    st.sampled_from(["", " ", "Lead", " K-1 ", "D-7", "d-7", "D-7x", "Київ", "a" * 60, "a" * 101]),
    st.text(alphabet="ab -\t\n\x00\x1f\ud800", max_size=6),
)


_TECHFLOW = validate_document(
    json.loads((SAMPLE_RULES / "techflow.json").read_text("utf-8")), known_funnels=["project_work"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            _CELL,
            _CELL,
            _CELL,
            _CELL,
            st.sampled_from(["", " ", "incoming", " qualification ", "nope", "cold_call"]),
            st.sampled_from(["", " ", "fair", " web ", "a\x00"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_file_is_checked_exactly_as_each_of_its_rows_alone(cells: list[tuple[str, ...]]) -> None:
    # A column that passes as a whole is taken without a call per cell, and a row whose cells all
    # passed without a step per cell; one bad cell anywhere sends its column cell by cell. Either way
    # each row's outcome is the one it gets alone, and a good row holds its cells as checked.
    rs = _TECHFLOW
    cols = [
        ("Код", "key"),
        ("Назва", "title"),
        ("Телефон", "phone"),
        ("Email", "email"),
        ("Етап", "stage"),
        ("Джерело", "source"),
    ]
    # Keys made distinct (a key given twice is the one check that reads other rows).
    rows = [
        (line, (key + str(line) if key.strip() else key, *rest))
        for line, (key, *rest) in enumerate(cells, start=2)
    ]
    good, problems = check_rows(rs, cols, rows, {}, SYSTEM, text=True)
    alone = [check_rows(rs, cols, [r], {}, SYSTEM, text=True) for r in rows]
    assert good == [g for one, _p in alone for g in one]
    assert problems == [p for _g, ps in alone for p in ps]
    given = dict(rows)
    for g in good:
        key, title, phone, email, stage, source = given[g.row]
        assert (g.key, g.stage, g.manager_id) == (
            key.strip() or None,
            stage.strip() or rs.entry_stage,
            None,
        )
        assert g.builtin == {"title": title, "phone": phone, "email": email}
        assert g.custom == ({"source": source} if source.strip() else {})

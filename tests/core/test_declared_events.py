"""Declared events: a funnel names its own signals, one command records them, rules read them per stage visit.

Also the migration that carried the four former event columns of existing deals into ``deal_signals``.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from engine.errors import InvalidChange
from engine.rules.registry import variables_for
from engine.simulate.simulator import run_scenario
from storage import repositories as repo
from storage.db import make_engine
from storage.migrate import alembic_config
from tests.conftest import SAMPLE_RULES, START
from tests.support.sessions import db_session

H = timedelta(hours=1)


def _value(c: Conveyor, deal: int, name: str) -> Any:
    state = c.deal(deal)
    return variables_for(c.ruleset(state.funnel))[name].read(state, c.clock.now())


def _funnel(events: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "funnel": "demo",
        "name": "Demo funnel",
        "stages": [{"id": "lead", "name": "Lead"}, {"id": "demo", "name": "Demo"}],
        "fields": [{"name": "seats", "label": "Seats", "type": "numeric"}],
        "events": events,
        **extra,
    }


def test_an_owner_declares_their_own_events_and_rules_read_them(
    conveyor: Conveyor, clock: VirtualClock
) -> None:
    doc = _funnel(
        [
            {"name": "demo_booked", "label": "Demo booked", "by": "manager"},
            {"name": "nda_returned", "label": "NDA returned", "fields": {"seats": "seats"}},
        ],
        rules=[
            {
                "id": "after_demo",
                "conditions": {
                    "all": [
                        {"name": "demo_booked", "operator": "is_true", "value": None},
                        {
                            "name": "hours_since_demo_booked",
                            "operator": "greater_than_or_equal_to",
                            "value": 2,
                        },
                    ]
                },
                "actions": [
                    {"name": "notify_manager", "params": {"text": "Ask {title} how the demo went"}}
                ],
            }
        ],
    )
    conveyor.save_ruleset(doc)
    deal = conveyor.create_deal("demo", title="Acme")
    before = conveyor.deal(deal).activity_seq
    conveyor.record_event(deal, "demo_booked")
    assert (
        conveyor.deal(deal).activity_seq == before + 1
    )  # "by": "manager" is the manager's activity
    conveyor.record_event(deal, "nda_returned", data={"seats": 12, "note": "signed copy"})
    state = conveyor.deal(deal)
    assert state.activity_seq == before + 1 and state.fields["seats"] == 12
    clock.advance(2 * H)
    report = conveyor.tick()
    assert (
        report.rules_fired == 1
    )  # the due time counted from the event: the tick found the deal due
    with db_session(conveyor) as s:
        rows = repo.list_signals(s, deal)
        assert [(r.name, r.stage_visit, r.data) for r in rows] == [
            ("demo_booked", 1, {}),
            ("nda_returned", 1, {"seats": 12.0, "note": "signed copy"}),
        ]
        history = [
            (e.kind, e.actor, e.data["name"])
            for e in repo.list_events(s, deal)
            if e.kind == "event"
        ]
    assert history == [("event", "manager", "demo_booked"), ("event", "client", "nda_returned")]
    card = conveyor.reports.deal_card(deal)
    assert "Demo booked" in list(card.events["what"])
    assert "NDA returned (seats: 12, note: signed copy)" in list(card.events["what"])


def test_an_undeclared_event_is_refused_with_a_suggestion(conveyor: Conveyor) -> None:
    deal = conveyor.create_deal("techflow", title="Acme")
    with pytest.raises(
        InvalidChange,
        match="funnel 'techflow' declares no event 'proposal_opend'; "
        "did you mean 'proposal_opened'?",
    ):
        conveyor.record_event(deal, "proposal_opend")
    with pytest.raises(InvalidChange, match="declares no event 'signed'.*declared: none"):
        conveyor.save_ruleset(_funnel([]))
        conveyor.record_event(conveyor.create_deal("demo"), "signed")
    assert conveyor.deal(deal).signals == {}


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (START + H, "is in the future"),
        (datetime(2026, 3, 1, 9, 0), "has no time zone"),
        (datetime(1969, 12, 31, tzinfo=UTC), "is before 1970"),
        ("yesterday", "needs a date and time"),
    ],
    ids=["future", "naive", "before-1970", "text"],
)
def test_an_event_time_must_be_an_aware_instant_not_in_the_future(
    conveyor: Conveyor, at: Any, message: str
) -> None:
    deal = conveyor.create_deal("techflow", title="Acme")
    with pytest.raises(InvalidChange, match=message):
        conveyor.record_event(deal, "payment_received", at=at)
    assert conveyor.deal(deal).signals == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "must be an object"),
        ({"amount": {"value": 1}}, "must be text, a number"),
        ({"note": "a\x00b"}, "event data 'note' contains the control character NUL"),
        ({f"k{i}": i for i in range(51)}, "51 keys; the limit is 50"),
    ],
    ids=["list", "nested", "nul", "too-many-keys"],
)
def test_event_data_is_a_flat_object_within_the_limits_of_deal_input(
    conveyor: Conveyor, data: Any, message: str
) -> None:
    deal = conveyor.create_deal("techflow", title="Acme")
    with pytest.raises(InvalidChange, match=message):
        conveyor.record_event(deal, "client_replied", data=data)


def test_a_payment_reported_late_counts_from_when_it_was_made(
    conveyor: Conveyor, clock: VirtualClock
) -> None:
    deal = conveyor.create_deal("techflow", title="Acme")
    clock.advance(10 * H)
    conveyor.record_event(deal, "client_replied", at=START + 2 * H)
    assert _value(conveyor, deal, "hours_since_client_replied") == pytest.approx(8)
    conveyor.record_event(
        deal, "client_replied", at=START + H
    )  # an older report does not move it back
    assert _value(conveyor, deal, "hours_since_client_replied") == pytest.approx(8)
    with db_session(conveyor) as s:
        assert len(repo.list_signals(s, deal, "client_replied")) == 2


def test_an_event_holds_in_the_stage_visit_it_was_recorded_in(
    conveyor: Conveyor, clock: VirtualClock
) -> None:
    deal = conveyor.create_deal("techflow", title="Acme")
    conveyor.move_deal(deal, "qualification")
    conveyor.record_event(deal, "client_replied")
    assert _value(conveyor, deal, "client_replied") is True
    clock.advance(H)
    conveyor.update_deal(deal, {"budget": "yes", "authority": "yes", "need": "yes"})
    conveyor.move_deal(deal, "proposal")
    # A new visit: the reply belongs to the last one; how long ago it was is still known.
    assert _value(conveyor, deal, "client_replied") is False
    assert _value(conveyor, deal, "hours_since_client_replied") == pytest.approx(1)


def test_a_proposal_opened_in_an_earlier_visit_does_not_notify_in_the_next(
    conveyor: Conveyor, clock: VirtualClock
) -> None:
    deal = conveyor.create_deal("techflow", title="Acme")
    conveyor.move_deal(deal, "qualification")
    conveyor.update_deal(deal, {"budget": "yes", "authority": "yes", "need": "yes"})
    conveyor.move_deal(deal, "proposal")
    conveyor.record_event(deal, "proposal_attached")
    conveyor.record_event(deal, "proposal_opened")
    conveyor.record_event(deal, "client_replied")
    conveyor.move_deal(deal, "cold_call")
    conveyor.move_deal(deal, "qualification")
    conveyor.move_deal(deal, "proposal")  # back, with a new proposal to make
    clock.advance(30 * H)
    conveyor.tick()
    assert conveyor.queries.firing_count(rule_id="proposal_opened_no_reply") == 0
    assert conveyor.queries.firing_count(rule_id="proposal_stale_48h") == 0


def test_a_scenario_signal_line_records_a_declared_event_with_its_data(fresh_database: Any) -> None:
    lines = [
        {
            "at": "2026-03-02T09:00:00Z",
            "event": "manager",
            "name": "Olena",
            "phone": "+380501110001",
        },
        {
            "at": "2026-03-02T09:05:00Z",
            "event": "create",
            "deal": "A",
            "stage": "contract",
            "fields": {
                "title": "Acme",
                "phone": "+380501234567",
                "amount": 1000,
                "company_name": "Acme LLC",
                "tax_id": "1",
                "billing_address": "Kyiv",
            },
        },
        {
            "at": "2026-03-02T10:00:00Z",
            "event": "signal",
            "deal": "A",
            "name": "payment_received",
            "data": {"amount": 1000},
            "happened": "2026-03-02T09:30:00Z",
        },
        {"at": "2026-03-02T10:10:00Z", "event": "signal", "deal": "A", "name": "payment_recieved"},
        {"at": "2026-03-02T11:00:00Z", "event": "end"},
    ]
    out = run_scenario(
        [json.dumps(line) for line in lines],
        sorted(SAMPLE_RULES.glob("*.json")),
        db=fresh_database(),
    )
    assert [
        (line["rule"], line["at"]) for line in out if line.get("rule") == "payment_to_paid"
    ] == [("payment_to_paid", "2026-03-02T10:00:00Z")]
    errors = [line["error"] for line in out if "error" in line and "rule" not in line]
    assert errors == [
        "funnel 'techflow' declares no event 'payment_recieved'; did you mean 'payment_received'?"
        " (declared: proposal_attached, proposal_opened, client_replied, payment_received)"
    ]


# -- migration 0003 ----------------------------------------------------------------------------------
OLD_COLUMNS = (
    "proposal_attached_at",
    "proposal_opened_at",
    "client_replied_at",
    "payment_received_at",
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return request.getfixturevalue("pg_url")


def _alembic(url: str, revision: str, *, down: bool = False) -> None:
    engine = make_engine(url)
    try:
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)
    finally:
        engine.dispose()


def test_migration_0003_carries_the_four_event_columns_into_signals_and_back(
    empty_database: str,
) -> None:
    url = empty_database
    _alembic(url, "0002")
    doc = json.loads((SAMPLE_RULES / "techflow.json").read_text(encoding="utf-8"))
    old_doc = copy.deepcopy(doc)  # what a 0002 database held: no events declared yet
    old_doc.pop("events")
    t = datetime(2026, 3, 1, 9, 0)
    times = {
        "proposal_attached_at": t,
        "proposal_opened_at": t + timedelta(hours=3, microseconds=7),
        "client_replied_at": None,
        "payment_received_at": t + timedelta(hours=5),
    }
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO funnels (id, name, active_version_id, created_at) "
                "VALUES ('techflow', 'TechFlow', 1, :t)"
            ),
            {"t": t},
        )
        conn.execute(
            sa.text(
                "INSERT INTO ruleset_versions (id, funnel_id, version, document, fingerprint, comment,"
                " author, created_at) VALUES (1, 'techflow', 1, :d, 'x', '', '', :t)"
            ),
            {"d": json.dumps(old_doc), "t": t},
        )
        for i, (stage, visit, stamps) in enumerate(
            [("proposal", 3, times), ("incoming", 1, {})], 1
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO deals (id, key, funnel_id, title, phone, email, stage, closed, stage_visit,"
                    " stage_entered_at, activity_seq, fields, created_at, updated_at, proposal_attached_at,"
                    " proposal_opened_at, client_replied_at, payment_received_at) VALUES"
                    " (:i, :k, 'techflow', '', '', '', :s, false, :v, :t, 0, '{}', :t, :t, :a, :o, :r, :p)"
                ),
                {
                    "i": i,
                    "k": f"OLD-{i}",
                    "s": stage,
                    "v": visit,
                    "t": t,
                    **{
                        k[0]: stamps.get(c)
                        for k, c in zip(("a", "o", "r", "p"), OLD_COLUMNS, strict=True)
                    },
                },
            )
    engine.dispose()

    c = Conveyor(url, clock=VirtualClock(START))  # migrates to the head
    try:
        # The stored version read the four as built-ins: it declares them now, and still evaluates.
        assert [e.name for e in c.ruleset("techflow").events] == [
            "proposal_attached",
            "proposal_opened",
            "client_replied",
            "payment_received",
        ]
        assert c.dry_run(1)
        state = c.deal(1)
        assert state.signals == {
            "proposal_attached": {"at": "2026-03-01T09:00:00.000000+00:00", "visit": 3},
            "proposal_opened": {"at": "2026-03-01T12:00:00.000007+00:00", "visit": 3},
            "payment_received": {"at": "2026-03-01T14:00:00.000000+00:00", "visit": 3},
        }
        assert c.deal(2).signals == {}
        # Every variable reads as the columns did: set ones true in the current visit, hours since them.
        assert _value(c, 1, "proposal_attached") is True and _value(c, 1, "client_replied") is False
        assert (
            _value(c, 1, "hours_since_proposal_opened")
            == (START - times["proposal_opened_at"].replace(tzinfo=UTC)).total_seconds() / 3600
        )
        with db_session(c) as s:
            rows = repo.list_signals(s, 1)
            assert [(r.name, r.at.replace(tzinfo=None), r.stage_visit) for r in rows] == [
                ("proposal_attached", times["proposal_attached_at"], 3),
                ("proposal_opened", times["proposal_opened_at"], 3),
                ("payment_received", times["payment_received_at"], 3),
            ]
        columns = {col["name"] for col in sa.inspect(c.engine).get_columns("deals")}
        assert not columns & set(OLD_COLUMNS)
        indexes = {
            ix["name"]: ix["column_names"]
            for ix in sa.inspect(c.engine).get_indexes("deal_signals")
        }
        assert indexes["ix_deal_signals_deal_name_at"] == ["deal_id", "name", "at"]
    finally:
        c.close()

    _alembic(url, "0002", down=True)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            got = conn.execute(
                sa.text(f"SELECT {', '.join(OLD_COLUMNS)} FROM deals ORDER BY id")
            ).all()
        expect = [tuple(times[col] for col in OLD_COLUMNS), (None, None, None, None)]
        norm = [
            tuple(
                v if v is None or isinstance(v, datetime) else datetime.fromisoformat(v)
                for v in row
            )
            for row in got
        ]
        assert norm == expect
        assert "deal_signals" not in sa.inspect(engine).get_table_names()
        with engine.connect() as conn:
            stored = json.loads(
                conn.execute(sa.text("SELECT document FROM ruleset_versions")).scalar_one()
            )
        assert stored == old_doc
    finally:
        engine.dispose()

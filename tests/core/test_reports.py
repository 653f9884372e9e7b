"""engine.core.reports on known histories: the numbers the manager pages chart must be right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.cli.demo_data import SAMPLE_RULES, load_demo
from engine.clock import VirtualClock
from engine.core import reports
from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import run_until_idle


@pytest.fixture
def demo(backend: str, clock: VirtualClock) -> Conveyor:
    """The demo data replayed under the virtual clock: every number below is deterministic."""
    c = Conveyor(backend, clock=clock)
    load_demo(c)
    yield c
    c.close()


def test_conversion_counts_distinct_deals_per_move_on_the_demo(demo):
    conv = demo.reports.conversion("techflow")
    got = {(r["from"], r["to"]): (r["deals"], r["entered_from"]) for _, r in conv.iterrows()}
    # Demo: 5 leads; Acme, Dnipro and Odesa qualified; Dnipro answered "no" (rule → cold call);
    # Acme and Odesa reached Proposal; Odesa signed and paid (payment rule → Paid).
    assert got == {
        ("incoming", "qualification"): (3, 5),
        ("qualification", "proposal"): (2, 3),
        ("qualification", "cold_call"): (1, 3),
        ("proposal", "contract"): (1, 2),
        ("contract", "paid"): (1, 1),
    }
    rate = conv.set_index(["from", "to"])["rate"]
    assert rate[("incoming", "qualification")] == pytest.approx(0.6)
    reach = demo.reports.stage_reach("techflow").set_index("stage")["deals"].to_dict()
    assert reach == {
        "incoming": 5,
        "qualification": 3,
        "proposal": 2,
        "contract": 1,
        "paid": 1,
        "cold_call": 1,
    }


def test_demo_summary_and_project_work_child(demo):
    total = demo.reports.summary("techflow")
    assert (total.open_deals, total.won_deals, total.lost_deals) == (3, 1, 1)
    assert total.failed_actions == 0
    child = demo.reports.deal_board("project_work")
    assert child["key"].tolist() == ["D-4/project_work"]
    card = demo.reports.deal_card(int(child["id"].iloc[0]))
    assert card.parent_key == "D-4"
    assert card.allowed_moves  # the child deal can move on in its own funnel


def test_time_in_stage_averages_finished_and_running_stays(conveyor, clock):
    a = conveyor.create_deal("techflow", title="A")
    clock.advance(timedelta(hours=4))
    b = conveyor.create_deal("techflow", title="B")
    clock.advance(timedelta(hours=2))
    conveyor.move_deal(a, "qualification")  # A: 6 h in incoming
    clock.advance(timedelta(hours=10))  # B still in incoming: 12 h so far; A 10 h in qualification
    times = conveyor.reports.time_in_stage("techflow").set_index("stage")
    assert times.loc["incoming", "visits"] == 2
    assert times.loc["incoming", "finished"] == 1
    assert times.loc["incoming", "avg_hours"] == pytest.approx((6 + 12) / 2)
    assert times.loc["qualification", "avg_hours"] == pytest.approx(10)
    assert "paid" not in times.index  # won/lost stages are ends, not waits
    stuck = conveyor.reports.stuck_deals("techflow", threshold_hours=11)
    assert stuck["id"].tolist() == [b]
    assert conveyor.reports.stuck_deals("techflow", threshold_hours=9)["id"].tolist() == [b, a]


def test_firings_are_counted_per_rule_per_monday_week(conveyor, clock):
    conveyor.create_deal("techflow", title="Week 1")  # Monday 2 March
    clock.advance(timedelta(days=7))
    conveyor.create_deal("techflow", title="Week 2 a")
    conveyor.create_deal("techflow", title="Week 2 b")
    weekly = conveyor.reports.firings_per_week("techflow")
    counts = {(r["week"], r["rule_id"]): r["firings"] for _, r in weekly.iterrows()}
    assert counts == {("2026-03-02", "assign_new_lead"): 1, ("2026-03-09", "assign_new_lead"): 2}


def test_overdue_counts_only_open_tasks_past_due_per_manager(conveyor, clock):
    first = conveyor.create_deal("techflow", title="First")
    conveyor.create_deal("techflow", title="Second")
    run_until_idle(
        conveyor
    )  # round robin: Olena gets the first lead, Petro the second; tasks due in 2 h
    assert conveyor.reports.overdue_by_manager().empty
    clock.advance(timedelta(hours=3))
    overdue = conveyor.reports.overdue_by_manager()
    assert dict(zip(overdue["manager"], overdue["overdue"], strict=True)) == {
        "Olena": 1,
        "Petro": 1,
    }
    total = conveyor.reports.summary()
    assert (total.open_tasks, total.overdue_tasks, total.open_deals) == (2, 2, 2)
    task_id = int(conveyor.reports.task_queue(manager="Olena")["id"].iloc[0])
    conveyor.complete_task(task_id)
    overdue = conveyor.reports.overdue_by_manager()
    assert dict(zip(overdue["manager"], overdue["overdue"], strict=True)) == {"Petro": 1}
    assert conveyor.deal(first).manager_name == "Olena"


def test_task_queue_puts_high_priority_first_and_filters(conveyor, clock):
    deal = conveyor.create_deal("techflow", title="Lead")
    run_until_idle(conveyor)
    clock.advance(timedelta(hours=25))
    conveyor.tick()  # incoming_idle_24h: a high-priority notification
    run_until_idle(conveyor)
    queue = conveyor.reports.task_queue()
    assert queue["kind"].tolist() == ["notification", "task"]
    assert queue["high"].tolist() == [True, False]
    # a notification is never "overdue"; the 2-hour call task is
    assert queue["overdue"].tolist() == [False, True]
    assert conveyor.reports.task_queue(priorities=["normal"])["kind"].tolist() == ["task"]
    assert conveyor.reports.task_queue(manager="Petro").empty
    assert conveyor.reports.task_queue(manager="").empty  # nothing unassigned
    assert conveyor.reports.task_queue(funnel="project_work").empty
    assert set(conveyor.reports.task_queue()["deal_id"]) == {deal}


def test_action_log_keeps_rule_reason_version_and_error(conveyor):
    deal = conveyor.create_deal("techflow", title="No phone")
    conveyor.update_deal(
        deal,
        {
            "company_name": "X",
            "tax_id": "1",
            "billing_address": "Y",
            "budget": "yes",
            "authority": "yes",
            "need": "yes",
        },
    )
    for stage in ("qualification", "proposal", "contract"):
        conveyor.move_deal(deal, stage)
    run_until_idle(conveyor)
    log = conveyor.reports.action_log()
    sms = log[log["action"] == "send_sms"].iloc[0]
    assert (sms["status"], sms["rule_id"], sms["version"]) == ("dead", "contract_invoice_sms", 1)
    assert sms["reason"] == "Stage: Contract"
    assert "bad phone number" in sms["error"]
    assert conveyor.reports.action_log(statuses=["dead"])["id"].tolist() == [sms["id"]]
    assert conveyor.reports.summary().failed_actions == 1


def test_dry_run_reads_write_nothing(demo):
    before = demo.reports.row_counts()
    acme = demo.deal_id("D-1")
    for hours in (0, 24, 48, 24 * 90):
        demo.dry_run(acme, demo.clock.now() + timedelta(hours=hours))
    sample = reports.sample_deal(
        "techflow", "incoming", demo.clock.now(), hours_in_stage=30, hours_since_created=30
    )
    traces = {t.rule.id: t for t in demo.dry_run(sample)}
    assert traces["incoming_idle_24h"].fires
    assert [c.actual for c in traces["incoming_idle_24h"].conditions] == [
        "incoming",
        pytest.approx(30),
    ]
    assert demo.reports.row_counts() == before


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        (None, "2026-03-02 11:00"),  # Europe/Kyiv by default (UTC+2 in winter)
        ("UTC", "2026-03-02 09:00"),
        ("America/New_York", "2026-03-02 04:00"),
        ("Not/AZone", "2026-03-02 11:00"),  # an unknown zone falls back to Kyiv rather than failing
    ],
    ids=["default-kyiv", "utc", "new-york", "unknown-falls-back"],
)
def test_times_are_stored_utc_and_shown_in_the_display_zone(monkeypatch, zone, shown):
    if zone is None:
        monkeypatch.delenv("CONVEYOR_TZ", raising=False)
    else:
        monkeypatch.setenv("CONVEYOR_TZ", zone)
    assert reports.to_display(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) == shown


@pytest.mark.parametrize(
    ("hours", "text"), [(0.5, "30 min"), (5.2, "5 h 12 min"), (48.5, "2 d 0 h"), (-3, "-3 h 0 min")]
)
def test_hours_text_reads_naturally(hours, text):
    assert reports.hours_text(hours) == text


def test_summary_conversion_queue_card_and_firings_read_a_live_history(backend, clock):
    c = Conveyor(backend, clock=clock)
    try:
        c.load_rules_dir(SAMPLE_RULES)
        c.add_manager("Olena")
        a = c.create_deal("techflow", title="Львівська кава", fields={"phone": "+380501234567"})
        b = c.create_deal("techflow", title="B")
        run_until_idle(c)
        clock.advance(timedelta(hours=3))
        c.move_deal(a, "qualification")  # a's "Call the new lead" is cancelled: b's alone is late
        total = c.reports.summary("techflow")
        assert (total.open_deals, total.open_tasks, total.overdue_tasks) == (2, 1, 1)
        conv = c.reports.conversion("techflow")
        assert conv[["from", "to", "deals", "entered_from"]].values.tolist() == [
            ["incoming", "qualification", 1, 2]
        ]
        assert c.reports.overdue_by_manager()["overdue"].tolist() == [1]
        assert set(c.reports.task_queue()["deal_id"]) == {b}
        assert c.reports.deal_card(a).events["kind"].tolist()[-1] == "stage_moved"
        assert c.reports.firings_per_week()["firings"].sum() == 2
    finally:
        c.close()

"""The ten TechFlow automations, each firing and each staying quiet, through the simulator.

Scenarios are JSON lines on a virtual clock that ticks every 15 minutes from the first event; the
assertions read the printed action lines (times, rule ids, params) exactly as a user sees them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.simulate.simulator import run_scenario

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "sample_rules").glob("*.json"))
CONVEYOR_BIN = Path(sys.executable).parent / "conveyor"

DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # first event of every scenario: the clock's origin
PHONE = "+380501234567"
COUNTERPARTY = {
    "company_name": "Acme LLC",
    "tax_id": "12345678",
    "billing_address": "Kyiv, Khreshchatyk 1",
}


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def at(hours: float = 0, minutes: float = 0) -> datetime:
    return DAY0 + timedelta(hours=hours, minutes=minutes)


def first_tick_at_or_after(when: datetime, tick_minutes: int = 15) -> datetime:
    """The simulator ticks at DAY0 + k * tick; a time rule due at ``when`` fires at the first such tick."""
    step = timedelta(minutes=tick_minutes)
    k = -(-(when - DAY0) // step)  # ceiling division of timedeltas
    return DAY0 + k * step


def ev(when: datetime, event: str, deal: str | None = None, **data: Any) -> str:
    line: dict[str, Any] = {"at": iso(when), "event": event}
    if deal is not None:
        line["deal"] = deal
    line.update(data)
    return json.dumps(line)


def scenario(*events: str, managers: tuple[str, ...] = ("Olena",)) -> list[str]:
    head = [
        ev(DAY0, "manager", name=m, phone="+38050111000" + str(i))
        for i, m in enumerate(managers, 1)
    ]
    return head + list(events)


@pytest.fixture(autouse=True)
def _scenarios_run_on_the_backend(
    fresh_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every scenario of this suite runs on SQLite and on PostgreSQL, each run on an empty database."""
    monkeypatch.setattr(sys.modules[__name__], "new_database", fresh_database)


def new_database() -> str:
    return "sqlite://"  # replaced per test by the backend's fresh databases


def run(lines: list[str], tick_minutes: int = 15) -> list[dict]:
    return run_scenario(lines, RULES, tick_minutes, db=new_database())


def fired(out: list[dict], rule: str, deal: str = "A") -> list[dict]:
    return [line for line in out if line.get("rule") == rule and line.get("deal") == deal]


def lead(when: datetime | None = None, deal: str = "A", **fields: Any) -> str:
    when = when or at(minutes=5)
    return ev(
        when, "create", deal, fields={"title": "Acme", "phone": PHONE, "amount": 1000, **fields}
    )


def to_qualification(when: datetime, deal: str = "A") -> str:
    return ev(when, "move", deal, stage="qualification")


def through_qualification(start: datetime, deal: str = "A") -> list[str]:
    """Lead → qualification with three "yes" → proposal, all at ``start``."""
    return [
        to_qualification(start, deal),
        ev(start, "update", deal, fields={"budget": "yes", "authority": "yes", "need": "yes"}),
        ev(start, "move", deal, stage="proposal"),
    ]


# -- 1. new lead: assign a manager and a first task -----------------------------------------------
def test_new_lead_gets_a_manager_and_a_call_task_due_in_two_hours():
    created = at(minutes=5)
    out = run(scenario(lead(created), ev(at(hours=1), "end"), managers=("Olena", "Petro")))

    lines = fired(out, "assign_new_lead")
    assert [(line["action"], line["at"]) for line in lines] == [
        ("assign_manager", iso(created)),
        ("create_task", iso(created)),
    ]
    assert lines[0]["params"]["manager"] == "Olena"
    task = lines[1]["params"]
    assert task["title"] == "Зателефонувати новому ліду Acme"
    assert task["due_at"] == iso(created + timedelta(hours=2))
    assert task["priority"] == "normal"
    assert task["manager"] == "Olena"


def test_second_lead_goes_to_the_other_manager_round_robin():
    out = run(
        scenario(
            lead(at(minutes=5), "A"),
            lead(at(minutes=10), "B"),
            ev(at(hours=1), "end"),
            managers=("Olena", "Petro"),
        )
    )
    assigned = {
        line["deal"]: line["params"]["manager"]
        for line in out
        if line.get("action") == "assign_manager"
    }
    assert assigned == {"A": "Olena", "B": "Petro"}


def test_deal_created_past_incoming_is_not_treated_as_a_new_lead():
    out = run(
        scenario(
            ev(
                at(minutes=5),
                "create",
                "A",
                stage="qualification",
                fields={"title": "Acme", "budget": "yes", "authority": "yes", "need": "yes"},
            ),
            ev(at(hours=26), "end"),
        ),
        tick_minutes=60,
    )
    assert fired(out, "assign_new_lead") == []
    assert fired(out, "incoming_idle_24h") == []


def test_new_lead_rule_fires_once_per_visit_not_on_every_change_or_tick():
    out = run(
        scenario(
            lead(),
            ev(at(hours=1), "update", "A", fields={"source": "website"}),
            ev(at(hours=2), "activity", "A", kind="call"),
            ev(at(hours=4), "end"),
        )
    )
    assert [line["action"] for line in fired(out, "assign_new_lead")] == [
        "assign_manager",
        "create_task",
    ]


# -- 2. incoming, 24 h without manager activity: high-priority reminder --------------------------
def test_idle_lead_gets_one_reminder_after_24_hours():
    created = at(minutes=5)
    out = run(scenario(lead(created), ev(at(hours=49), "end")))

    reminders = fired(out, "incoming_idle_24h")
    assert len(reminders) == 1, reminders
    due = first_tick_at_or_after(created + timedelta(hours=24))
    assert due == at(hours=24, minutes=15)
    assert reminders[0]["at"] == iso(due)
    assert reminders[0]["action"] == "notify_manager"
    assert reminders[0]["params"]["priority"] == "high"
    assert reminders[0]["params"]["text"] == "Лід Acme уже 24 години без жодної дії"
    assert reminders[0]["params"]["manager"] == "Olena"


def test_manager_activity_inside_24_hours_postpones_the_reminder():
    created, call = at(minutes=5), at(hours=11, minutes=7)
    out = run(
        scenario(lead(created), ev(call, "activity", "A", kind="call"), ev(at(hours=36), "end"))
    )

    reminders = fired(out, "incoming_idle_24h")
    # Nothing at created + 24 h: the idle clock restarted at the call.
    assert [r["at"] for r in reminders] == [iso(first_tick_at_or_after(call + timedelta(hours=24)))]


def test_steady_manager_activity_means_no_reminder_at_all():
    events = [lead()] + [ev(at(hours=h), "activity", "A", kind="note") for h in (10, 20, 30, 40)]
    out = run(scenario(*events, ev(at(hours=50), "end")), tick_minutes=60)
    assert fired(out, "incoming_idle_24h") == []


def test_lead_moved_on_within_24_hours_gets_no_idle_reminder():
    out = run(
        scenario(
            lead(),
            to_qualification(at(hours=3)),
            ev(
                at(hours=3),
                "update",
                "A",
                fields={"budget": "yes", "authority": "yes", "need": "yes"},
            ),
            ev(at(hours=30), "end"),
        ),
        tick_minutes=60,
    )
    assert fired(out, "incoming_idle_24h") == []


def test_engine_actions_are_not_manager_activity_for_the_idle_timer():
    # The engine's own assign_manager and create_task at creation must not restart the idle clock.
    created = at(minutes=50)
    out = run(scenario(lead(created), ev(at(hours=26), "end")))
    assert [r["at"] for r in fired(out, "incoming_idle_24h")] == [iso(at(hours=25))]


# -- 3. qualification: any answer "no" → cold call ------------------------------------------------
@pytest.mark.parametrize("answer", ["budget", "authority", "need"])
def test_any_no_answer_in_qualification_moves_the_deal_to_cold_call(answer):
    answered = at(hours=2, minutes=30)
    fields = {"budget": "yes", "authority": "yes", "need": "yes", answer: "no"}
    out = run(
        scenario(
            lead(),
            to_qualification(at(hours=1)),
            ev(answered, "update", "A", fields=fields),
            ev(at(hours=4), "end"),
        )
    )

    moves = fired(out, "qualification_no")
    assert [(m["action"], m["params"]["to_stage"], m["at"]) for m in moves] == [
        ("move_to_stage", "cold_call", iso(answered))
    ]
    assert moves[0]["params"]["from_stage"] == "qualification"


def test_three_yes_answers_keep_the_deal_in_qualification():
    out = run(
        scenario(
            lead(),
            to_qualification(at(hours=1)),
            ev(
                at(hours=2),
                "update",
                "A",
                fields={"budget": "yes", "authority": "yes", "need": "yes"},
            ),
            ev(at(hours=30), "end"),
        ),
        tick_minutes=60,
    )
    assert fired(out, "qualification_no") == []
    assert fired(out, "qualification_timeout") == []
    assert fired(out, "cold_call_again") == []


def test_a_no_answer_outside_qualification_does_not_move_the_deal():
    # Answers recorded while the lead is still incoming: the rule is scoped to the qualification stage.
    out = run(
        scenario(
            lead(), ev(at(hours=1), "update", "A", fields={"budget": "no"}), ev(at(hours=6), "end")
        )
    )
    assert fired(out, "qualification_no") == []
    assert fired(out, "cold_call_again") == []


# -- 4. qualification: not all answered within 24 h → cold call -----------------------------------
def test_unanswered_qualification_moves_to_cold_call_after_24_hours():
    entered = at(hours=1, minutes=20)
    out = run(
        scenario(
            lead(),
            to_qualification(entered),
            ev(at(hours=5), "update", "A", fields={"budget": "yes", "need": "yes"}),
            ev(at(hours=28), "end"),
        )
    )

    moves = fired(out, "qualification_timeout")
    due = first_tick_at_or_after(entered + timedelta(hours=24))
    assert due == at(hours=25, minutes=30)
    assert [(m["action"], m["params"]["to_stage"], m["at"]) for m in moves] == [
        ("move_to_stage", "cold_call", iso(due))
    ]
    # The move is itself a change: cold call's entry rule follows at the same instant.
    assert [c["at"] for c in fired(out, "cold_call_again")] == [iso(due)]


def test_answers_given_before_24_hours_prevent_the_timeout():
    entered = at(hours=1, minutes=20)
    out = run(
        scenario(
            lead(),
            to_qualification(entered),
            ev(
                entered + timedelta(hours=23, minutes=50),
                "update",
                "A",
                fields={"budget": "yes", "authority": "yes", "need": "yes"},
            ),
            ev(at(hours=30), "end"),
        ),
        tick_minutes=60,
    )
    assert fired(out, "qualification_timeout") == []
    assert fired(out, "cold_call_again") == []


def test_qualification_timeout_does_not_fire_one_tick_early():
    entered = at(hours=1)
    answered = entered + timedelta(hours=24, minutes=1)  # after the due tick at +24 h exactly
    out = run(
        scenario(
            lead(),
            to_qualification(entered),
            ev(
                answered, "update", "A", fields={"budget": "yes", "authority": "yes", "need": "yes"}
            ),
            ev(at(hours=26), "end"),
        )
    )
    assert [m["at"] for m in fired(out, "qualification_timeout")] == [
        iso(entered + timedelta(hours=24))
    ]


# -- 5. cold call on entry: task "call again" due in 90 days --------------------------------------
def test_entering_cold_call_creates_a_call_again_task_due_in_90_days():
    moved = at(hours=3, minutes=10)
    out = run(scenario(lead(), ev(moved, "move", "A", stage="cold_call"), ev(at(hours=5), "end")))

    tasks = fired(out, "cold_call_again")
    assert len(tasks) == 1
    assert tasks[0]["at"] == iso(moved)
    assert tasks[0]["action"] == "create_task"
    assert tasks[0]["params"]["title"] == "Передзвонити Acme"
    assert tasks[0]["params"]["due_at"] == iso(moved + timedelta(days=90))
    assert tasks[0]["params"]["priority"] == "normal"


def test_deal_that_never_enters_cold_call_gets_no_call_again_task():
    out = run(
        scenario(lead(), *through_qualification(at(hours=2)), ev(at(hours=30), "end")),
        tick_minutes=60,
    )
    assert fired(out, "cold_call_again") == []


def test_cold_call_task_is_created_again_on_a_second_visit_only():
    out = run(
        scenario(
            lead(),
            ev(at(hours=1), "move", "A", stage="cold_call"),
            ev(at(hours=2), "move", "A", stage="qualification"),
            ev(at(hours=2), "update", "A", fields={"budget": "no"}),
            ev(at(hours=8), "end"),
        ),
        tick_minutes=60,
    )
    # First visit by hand at 10:00, second by qualification_no at 11:00; the ticks in between add nothing.
    assert [t["at"] for t in fired(out, "cold_call_again")] == [iso(at(hours=1)), iso(at(hours=2))]


# -- 6. proposal attached: call the client, due 48 h later ----------------------------------------
def test_attaching_a_proposal_creates_a_call_task_due_48_hours_later():
    attached = at(hours=4, minutes=44)
    out = run(
        scenario(
            lead(),
            *through_qualification(at(hours=2)),
            ev(attached, "attach_proposal", "A"),
            ev(at(hours=6), "end"),
        )
    )

    tasks = fired(out, "proposal_attached")
    assert [(t["action"], t["at"]) for t in tasks] == [("create_task", iso(attached))]
    assert tasks[0]["params"]["title"] == "Зателефонувати Acme, щоб погодити КП"
    assert tasks[0]["params"]["due_at"] == iso(attached + timedelta(hours=48))
    assert tasks[0]["params"]["priority"] == "normal"


def test_proposal_stage_without_an_attached_proposal_creates_no_call_task():
    out = run(
        scenario(lead(), *through_qualification(at(hours=2)), ev(at(hours=52), "end")),
        tick_minutes=60,
    )
    assert fired(out, "proposal_attached") == []
    assert fired(out, "proposal_stale_48h") == []


# -- 7. proposal: 48 h without a stage change after attaching → urgent call task ----------------
def test_proposal_waiting_48_hours_gets_a_high_priority_call_task():
    attached = at(hours=5, minutes=3)
    out = run(
        scenario(
            lead(),
            *through_qualification(at(hours=2)),
            ev(attached, "attach_proposal", "A"),
            ev(at(hours=56), "end"),
        )
    )

    urgent = fired(out, "proposal_stale_48h")
    due = first_tick_at_or_after(attached + timedelta(hours=48))
    assert due == at(hours=53, minutes=15)
    assert len(urgent) == 1
    assert urgent[0]["at"] == iso(due)
    assert urgent[0]["action"] == "create_task"
    assert urgent[0]["params"]["priority"] == "high"
    assert urgent[0]["params"]["due_at"] == iso(due)
    assert urgent[0]["params"]["title"] == "Терміново: зателефонувати Acme — КП чекає вже 48 год"


def test_stage_change_before_48_hours_cancels_the_urgent_call_task():
    attached = at(hours=5)
    out = run(
        scenario(
            lead(),
            *through_qualification(at(hours=2)),
            ev(attached, "attach_proposal", "A"),
            ev(at(hours=30), "update", "A", fields=COUNTERPARTY),
            ev(attached + timedelta(hours=47, minutes=59), "move", "A", stage="contract"),
            ev(at(hours=56), "end"),
        ),
        tick_minutes=60,
    )
    assert fired(out, "proposal_stale_48h") == []
    assert len(fired(out, "contract_invoice_sms")) == 2  # the deal really moved on


def test_manager_activity_does_not_reset_the_48_hour_proposal_timer():
    # The rule is about stage changes, not activity: calls and notes inside 48 h do not postpone it.
    attached = at(hours=5)
    out = run(
        scenario(
            lead(),
            *through_qualification(at(hours=2)),
            ev(attached, "attach_proposal", "A"),
            ev(at(hours=30), "activity", "A", kind="call"),
            ev(at(hours=54), "end"),
        )
    )
    assert [u["at"] for u in fired(out, "proposal_stale_48h")] == [
        iso(attached + timedelta(hours=48))
    ]


# -- 8. proposal opened, no reply within 24 h → high-priority notification ---------------------
def test_opened_proposal_without_reply_notifies_the_manager_after_24_hours():
    opened = at(hours=6, minutes=41)
    out = run(
        scenario(
            lead(),
            *through_qualification(at(hours=2)),
            ev(at(hours=3), "attach_proposal", "A"),
            ev(opened, "proposal_opened", "A"),
            ev(at(hours=32), "end"),
        )
    )

    notes = fired(out, "proposal_opened_no_reply")
    due = first_tick_at_or_after(opened + timedelta(hours=24))
    assert due == at(hours=30, minutes=45)
    assert [(n["action"], n["at"]) for n in notes] == [("notify_manager", iso(due))]
    assert notes[0]["params"]["priority"] == "high"
    assert notes[0]["params"]["text"] == "Acme відкрив КП 24 год тому й досі не відповів"


def test_client_reply_before_24_hours_after_opening_means_no_notification():
    opened = at(hours=6)
    out = run(
        scenario(
            lead(),
            *through_qualification(at(hours=2)),
            ev(at(hours=3), "attach_proposal", "A"),
            ev(opened, "proposal_opened", "A"),
            ev(opened + timedelta(hours=23, minutes=50), "client_replied", "A"),
            ev(at(hours=32), "end"),
        ),
        tick_minutes=60,
    )
    assert fired(out, "proposal_opened_no_reply") == []


def test_unopened_proposal_gets_no_opened_notification():
    out = run(
        scenario(
            lead(),
            *through_qualification(at(hours=2)),
            ev(at(hours=3), "attach_proposal", "A"),
            ev(at(hours=40), "end"),
        ),
        tick_minutes=60,
    )
    assert fired(out, "proposal_opened_no_reply") == []


# -- 9. contract: entry guard, invoice, SMS with the invoice number ------------------------------
def contract_ready(moved: datetime) -> list[str]:
    return [
        lead(),
        *through_qualification(at(hours=2)),
        ev(at(hours=3), "attach_proposal", "A"),
        ev(at(hours=4), "update", "A", fields=COUNTERPARTY),
        ev(moved, "move", "A", stage="contract"),
    ]


def test_entering_contract_generates_an_invoice_and_texts_its_number():
    moved = at(hours=5, minutes=12)
    out = run(scenario(*contract_ready(moved), ev(at(hours=6), "end")))

    lines = fired(out, "contract_invoice_sms")
    assert [(line["action"], line["at"]) for line in lines] == [
        ("generate_invoice", iso(moved)),
        ("send_sms", iso(moved)),
    ]
    invoice = lines[0]["params"]
    assert invoice == {"number": "INV-2026-00001", "amount": 1000.0}
    sms = lines[1]["params"]
    assert "INV-2026-00001" in sms["text"]
    assert sms["text"] == (
        "Acme LLC: будь ласка, сплатіть 1000 грн за рахунком INV-2026-00001 (TechFlow). "
        "Реквізити: techflow.example/pay/INV-2026-00001"
    )
    assert sms["to"] == PHONE


def test_contract_sms_to_a_deal_without_a_phone_is_reported_not_lost():
    out = run(
        scenario(
            ev(at(minutes=5), "create", "A", fields={"title": "Acme", "amount": 1000}),
            *through_qualification(at(hours=2)),
            ev(at(hours=3), "update", "A", fields=COUNTERPARTY),
            ev(at(hours=4), "move", "A", stage="contract"),
            ev(at(hours=5), "end"),
        )
    )
    lines = fired(out, "contract_invoice_sms")
    assert [(line["action"], line.get("status", "done")) for line in lines] == [
        ("generate_invoice", "done"),
        ("send_sms", "dead"),
    ]
    assert "phone" in lines[1]["error"]


def test_invoice_numbers_are_sequential_across_deals():
    events = [lead(deal="A"), lead(deal="B")]
    events += through_qualification(at(hours=2), "A") + through_qualification(at(hours=2), "B")
    events += [
        ev(at(hours=3), "update", "B", fields=COUNTERPARTY),
        ev(at(hours=3), "update", "A", fields=COUNTERPARTY),
        ev(at(hours=4), "move", "B", stage="contract"),
        ev(at(hours=4, minutes=1), "move", "A", stage="contract"),
    ]
    out = run(scenario(*events, ev(at(hours=5), "end")))
    numbers = {
        line["deal"]: line["params"]["number"]
        for line in out
        if line.get("action") == "generate_invoice"
    }
    assert numbers == {"B": "INV-2026-00001", "A": "INV-2026-00002"}


def test_contract_guard_failure_prints_an_error_and_nothing_moves():
    refused = at(hours=5)
    out = run(
        scenario(
            lead(),
            *through_qualification(at(hours=2)),
            ev(at(hours=3), "attach_proposal", "A"),
            ev(at(hours=4), "update", "A", fields={"company_name": "Acme LLC"}),
            ev(refused, "move", "A", stage="contract"),
            ev(at(hours=8), "end"),
        )
    )

    errors = [line for line in out if "error" in line and "rule" not in line]
    assert len(errors) == 1
    assert errors[0]["at"] == iso(refused) and errors[0]["deal"] == "A"
    assert (
        "fill in Counterparty: tax id (ЄДРПОУ), Counterparty: billing address first"
        in errors[0]["error"]
    )
    assert "company_name" not in errors[0]["error"]
    assert fired(out, "contract_invoice_sms") == []
    assert not [line for line in out if line.get("action") in ("generate_invoice", "send_sms")]
    assert [
        line for line in out if line.get("at", "") > iso(refused)
    ] == []  # nothing moved after it


def test_contract_move_works_once_the_missing_fields_are_filled():
    out = run(
        scenario(
            lead(),
            *through_qualification(at(hours=2)),
            ev(at(hours=4), "move", "A", stage="contract"),
            ev(at(hours=4, minutes=30), "update", "A", fields=COUNTERPARTY),
            ev(at(hours=5), "move", "A", stage="contract"),
            ev(at(hours=6), "end"),
        )
    )
    assert len([line for line in out if "error" in line and "rule" not in line]) == 1
    assert [line["at"] for line in fired(out, "contract_invoice_sms")] == [iso(at(hours=5))] * 2


# -- 10. payment received → paid → start "Project work" -----------------------------------------
def test_payment_moves_to_paid_and_starts_the_project_work_deal():
    paid = at(hours=9, minutes=33)
    out = run(
        scenario(
            *contract_ready(at(hours=5)),
            ev(paid, "payment", "A", amount=1000),
            ev(at(hours=10), "end"),
        )
    )

    moves = fired(out, "payment_to_paid")
    assert [(m["action"], m["params"]["to_stage"], m["at"]) for m in moves] == [
        ("move_to_stage", "paid", iso(paid))
    ]
    starts = fired(out, "paid_start_project")
    assert [(s["action"], s["at"]) for s in starts] == [("start_process", iso(paid))]
    assert starts[0]["params"] == {
        "funnel": "project_work",
        "deal": "A/project_work",
        "title": "Проєкт: Acme",
    }
    # The new deal runs its own funnel's rules at once.
    kickoff = fired(out, "kickoff_meeting", deal="A/project_work")
    assert [(k["action"], k["at"], k["params"]["due_at"]) for k in kickoff] == [
        ("create_task", iso(paid), iso(paid + timedelta(hours=24)))
    ]


def test_without_payment_the_deal_stays_in_contract_and_no_project_starts():
    out = run(scenario(*contract_ready(at(hours=5)), ev(at(hours=30), "end")), tick_minutes=60)
    assert fired(out, "payment_to_paid") == []
    assert fired(out, "paid_start_project") == []
    assert not [line for line in out if line["deal"] == "A/project_work"]


def test_a_second_payment_neither_moves_again_nor_starts_a_second_project():
    out = run(
        scenario(
            *contract_ready(at(hours=5)),
            ev(at(hours=6), "payment", "A", amount=500),
            ev(at(hours=7), "payment", "A", amount=500),
            ev(at(hours=9), "end"),
        )
    )
    assert len(fired(out, "payment_to_paid")) == 1
    assert len(fired(out, "paid_start_project")) == 1


# -- the real command line -------------------------------------------------------------------------
def simulate_cli(tmp_path: Path, lines: list[str], *args: str) -> list[dict]:
    path = tmp_path / "scenario.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.run(
        [str(CONVEYOR_BIN), "simulate", str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_conveyor_simulate_command_prints_the_idle_reminder_and_the_qualification_timeout(tmp_path):
    lines = scenario(
        lead(), lead(at(hours=1), "B"), to_qualification(at(hours=2), "B"), ev(at(hours=30), "end")
    )
    out = simulate_cli(tmp_path, lines)
    assert out == run(lines)  # the command and the library print the same lines
    assert [r["at"] for r in fired(out, "incoming_idle_24h")] == [iso(at(hours=24, minutes=15))]
    assert [
        (m["at"], m["params"]["to_stage"]) for m in fired(out, "qualification_timeout", "B")
    ] == [(iso(at(hours=26)), "cold_call")]


def test_conveyor_simulate_command_reports_a_guard_failure_and_honours_tick_minutes(tmp_path):
    rules = [str(p) for p in RULES]
    lines = scenario(
        lead(),
        lead(deal="B"),
        *through_qualification(at(hours=2)),
        ev(at(hours=3), "move", "A", stage="contract"),
        ev(at(hours=30), "end"),
    )
    out = simulate_cli(
        tmp_path, lines, "--tick-minutes", "60", *[x for p in rules for x in ("--rules", p)]
    )
    errors = [line for line in out if "error" in line and "rule" not in line]
    assert (
        len(errors) == 1
        and errors[0]["deal"] == "A"
        and "Counterparty: tax id (ЄДРПОУ)" in errors[0]["error"]
    )
    assert fired(out, "contract_invoice_sms") == []
    # Hourly ticks from 09:00: B's idle reminder, due at 09:05 the next day, comes at the 10:00 tick.
    assert [r["at"] for r in fired(out, "incoming_idle_24h", "B")] == [iso(at(hours=25))]

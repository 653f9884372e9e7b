"""Review hardening: bad input is refused with a clear sentence, one bad deal never blocks the others.

Deal keys, text lengths and numbers are checked where they enter; a tick isolates a deal whose
evaluation fails; a version cannot strand deals in a stage it lacks; a dead action stops the rest of
its rule; rule folders load through one strict helper; races end in "try again", not a traceback.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.core.conveyor import Conveyor
from engine.errors import ConveyorError, InvalidChange, RuleSetInvalid
from engine.outbox.dispatcher import (
    RetryPolicy,
    dispatch_internal,
    dispatch_messages,
    retry,
    run_until_idle,
)
from engine.simulate.simulator import ScenarioInvalid, run_scenario
from storage import repositories as repo
from storage.models import Deal, DealEvent, Firing, OutboxAction, Task
from tests.conftest import SAMPLE_RULES


def rule(rule_id: str, stage: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": rule_id, "name": rule_id.replace("_", " "),
            "conditions": {"all": [{"name": "stage", "operator": "equal_to", "value": stage}]},
            "actions": actions}


def funnel(funnel_id: str, rules: list[dict[str, Any]], stages: tuple[str, ...] = ("start", "next")) -> dict[str, Any]:
    return {"format": "conveyor.ruleset/1", "funnel": funnel_id, "name": funnel_id.title(),
            "fields": [{"name": "score", "type": "numeric"}],
            "stages": [{"id": s, "name": s.title()} for s in stages], "initial_stage": stages[0], "rules": rules}


def sqlite_exec(db_url: str, sql: str) -> None:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as con:
        con.executescript(sql)


def events(c: Conveyor, deal_id: int, kind: str) -> list[DealEvent]:
    with c.session() as s:
        return repo.list_events(s, deal_id, kinds=[kind])


# -- 1.1 deal keys ---------------------------------------------------------------------------------
def test_an_explicit_key_shaped_like_a_generated_one_is_refused(conveyor):
    with pytest.raises(InvalidChange, match=r"deal key 'D-2' looks like a generated key"):
        conveyor.create_deal("techflow", key="D-2", title="Explicit")
    first = conveyor.create_deal("techflow", title="Keyless")
    second = conveyor.create_deal("techflow", title="Keyless too")
    assert conveyor.deal(first).key == f"D-{first}" and conveyor.deal(second).key == f"D-{second}"


def test_keys_that_only_resemble_generated_ones_are_accepted(conveyor):
    ids = [conveyor.create_deal("techflow", key=k) for k in ("D-2a", "d-3", "ACME-D-4", "  crm-77  ")]
    assert [conveyor.deal(i).key for i in ids] == ["D-2a", "d-3", "ACME-D-4", "crm-77"]
    with pytest.raises(InvalidChange, match="a deal with key 'crm-77' already exists"):
        conveyor.create_deal("techflow", key="crm-77")


def test_a_generated_key_colliding_with_old_data_is_a_clear_error_not_an_integrity_error(conveyor, db_url):
    # A row written before explicit D-<n> keys were refused holds the key the next deal would get.
    first = conveyor.create_deal("techflow", title="first")
    sqlite_exec(db_url, f"UPDATE deals SET key = 'D-{first + 1}' WHERE id = {first}")
    with pytest.raises(InvalidChange, match=r"was created by someone else at the same time; nothing was saved; try again"):
        conveyor.create_deal("techflow", title="second")
    with conveyor.session() as s:
        assert [d.title for d in repo.list_deals(s)] == ["first"]


# -- 1.2 lengths ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "message"), [
    ({"title": "x" * 400}, "field 'title' is 400 characters long; the limit is 300"),
    ({"phone": "1" * 51}, "field 'phone' is 51 characters long; the limit is 50"),
    ({"email": "a" * 195 + "@x.com"}, "field 'email' is 201 characters long; the limit is 200"),
], ids=["title", "phone", "email"])
def test_deal_text_longer_than_its_column_is_refused(conveyor, fields, message):
    with pytest.raises(InvalidChange, match=message):
        conveyor.create_deal("techflow", fields=fields)
    deal = conveyor.create_deal("techflow", title="ok")
    with pytest.raises(InvalidChange, match=message):
        conveyor.update_deal(deal, fields)
    assert conveyor.deal(deal).title == "ok"


def test_a_long_key_and_a_long_manager_name_are_refused(conveyor):
    with pytest.raises(InvalidChange, match="deal key is 101 characters long; the limit is 100"):
        conveyor.create_deal("techflow", key="k" * 101)
    with pytest.raises(InvalidChange, match="manager name is 201 characters long; the limit is 200"):
        conveyor.add_manager("m" * 201)


CHAIN_A = funnel("chain_a", [rule("start_b", "start", [{"name": "start_process", "params": {"funnel": "chain_b"}}])])
CHAIN_B = funnel("chain_b", [rule("start_c", "start", [{"name": "start_process", "params": {"funnel": "chain_c"}}])])
CHAIN_C = funnel("chain_c", [rule("note", "start", [{"name": "notify_manager", "params": {"text": "{title} started"}}])])


@pytest.fixture
def chain_folder(tmp_path: Path) -> Path:
    """a.json starts b's funnel, b starts c's: name order is the wrong order to save them in."""
    folder = tmp_path / "rules"
    folder.mkdir()
    for name, doc in (("a.json", CHAIN_A), ("b.json", CHAIN_B), ("c.json", CHAIN_C)):
        (folder / name).write_text(json.dumps(doc), encoding="utf-8")
    return folder


def test_keys_of_chained_processes_stay_within_the_key_column(db_url, clock, chain_folder):
    c = Conveyor(db_url, clock=clock)
    try:
        c.load_rules_dir(chain_folder)
        c.add_manager("Olena")
        long_key = "K" * 100
        c.create_deal("chain_a", key=long_key)
        c.create_deal("chain_a", key="K" * 99 + "L")  # same start, different end
        run_until_idle(c)
        with c.session() as s:
            keys = [d.key for d in repo.list_deals(s)]
        assert len(keys) == 6 and len(set(keys)) == 6
        assert all(len(k) <= 100 for k in keys), keys
        assert sum(k.endswith("/chain_c") for k in keys) == 2
    finally:
        c.close()


def test_postgres_refuses_a_400_character_title_clearly_and_a_bad_deal_does_not_block_a_tick(pg_url, clock):
    c = Conveyor(pg_url, clock=clock)
    try:
        c.load_rules_dir(SAMPLE_RULES)
        c.add_manager("Olena", "+380501110001")
        with pytest.raises(InvalidChange, match="field 'title' is 400 characters long; the limit is 300"):
            c.create_deal("techflow", title="T" * 400)
        deals = [c.create_deal("techflow", title=f"Lead {n}") for n in range(3)]
        run_until_idle(c)
        bad = deals[1]
        # A database-side refusal of one deal's firing, as an over-long value would be.
        _pg_exec(pg_url, f"""
                CREATE FUNCTION refuse_firing() RETURNS trigger AS $$
                BEGIN
                    IF NEW.deal_id = {bad} THEN
                        RAISE EXCEPTION 'value too long for type character varying(300)';
                    END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql;
                CREATE TRIGGER refuse_firing BEFORE INSERT ON firings FOR EACH ROW EXECUTE FUNCTION refuse_firing();
            """)
        _assert_tick_isolates(c, deals, bad, clock,
                              lambda: _pg_exec(pg_url, "DROP TRIGGER refuse_firing ON firings"))
    finally:
        c.close()


def _pg_exec(url: str, sql: str) -> None:
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.exec_driver_sql(sql)
    eng.dispose()


def _idle_firings(c: Conveyor) -> dict[int, int]:
    with c.session() as s:
        rows = s.execute(sa.select(Firing.deal_id).where(Firing.rule_id == "incoming_idle_24h")).scalars().all()
    return {d: rows.count(d) for d in set(rows)}


def _assert_tick_isolates(c: Conveyor, deals: list[int], bad: int, clock: Any, repair: Callable[[], None]) -> None:
    clock.advance(timedelta(hours=25))
    report = c.tick()
    assert report.deals_failed == 1
    assert _idle_firings(c) == {deals[0]: 1, deals[2]: 1}  # the others fired, the bad one waits
    [failure] = events(c, bad, "evaluation_failed")
    assert "value too long" in failure.data["error"]
    with c.session() as s:
        assert s.get(Deal, bad).next_due_at == clock.now() + timedelta(hours=1)
    repair()
    clock.advance(timedelta(minutes=30))
    assert c.tick().rules_fired == 0  # postponed, not dropped: not due yet
    clock.advance(timedelta(minutes=30))
    report = c.tick()
    assert (report.deals_failed, report.rules_fired) == (0, 1)
    assert _idle_firings(c) == {deals[0]: 1, deals[1]: 1, deals[2]: 1}


def test_sqlite_tick_evaluates_the_other_deals_when_one_fails(conveyor, clock, db_url):
    deals = [conveyor.create_deal("techflow", title=f"Lead {n}") for n in range(3)]
    run_until_idle(conveyor)
    bad = deals[1]
    sqlite_exec(db_url, f"""CREATE TRIGGER refuse_firing BEFORE INSERT ON firings WHEN NEW.deal_id = {bad}
                            BEGIN SELECT RAISE(ABORT, 'value too long for the rule name'); END;""")
    _assert_tick_isolates(conveyor, deals, bad, clock, lambda: sqlite_exec(db_url, "DROP TRIGGER refuse_firing"))


# -- 1.3 numbers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 10**400, 2e15],
                         ids=["inf", "-inf", "nan", "10**400", "2e15"])
def test_non_finite_and_huge_numbers_are_refused_everywhere(conveyor, value):
    with pytest.raises(InvalidChange, match="must be a finite number between -1e\\+15 and 1e\\+15"):
        conveyor.create_deal("techflow", fields={"amount": value})
    deal = conveyor.create_deal("techflow", fields={"amount": 100})
    with pytest.raises(InvalidChange, match="field 'amount' must be a finite number"):
        conveyor.update_deal(deal, {"amount": value})
    with pytest.raises(InvalidChange, match="payment amount must be a finite number"):
        conveyor.record_payment(deal, value)
    state = conveyor.deal(deal)
    assert state.amount == 100 and state.payment_received_at is None
    assert conveyor.dry_run(deal)  # the deal still evaluates
    conveyor.save_ruleset(funnel("scored", []))
    scored = conveyor.create_deal("scored", fields={"score": 7})
    with pytest.raises(InvalidChange, match="field 'score' must be a finite number"):
        conveyor.update_deal(scored, {"score": value})
    with pytest.raises(InvalidChange, match="field 'score' must be a finite number"):
        conveyor.create_deal("scored", fields={"score": value})
    assert conveyor.deal(scored).fields["score"] == 7


def test_negative_amounts_and_payments_are_refused(conveyor):
    with pytest.raises(InvalidChange, match="field 'amount' cannot be negative, got -5"):
        conveyor.create_deal("techflow", fields={"amount": -5})
    deal = conveyor.create_deal("techflow", fields={"amount": 0})
    with pytest.raises(InvalidChange, match="payment amount cannot be negative, got -0.01"):
        conveyor.record_payment(deal, -0.01)
    conveyor.record_payment(deal, 1e15)
    assert conveyor.deal(deal).payment_received_at is not None
    conveyor.save_ruleset(funnel("scored", []))
    scored = conveyor.create_deal("scored", fields={"score": -3})  # a custom number may be below zero
    assert conveyor.deal(scored).fields["score"] == -3


def test_a_scenario_with_nan_or_infinity_is_a_scenario_error():
    lines = ['{"event": "manager", "at": "2026-03-02T09:00:00Z", "name": "Olena"}',
             '{"event": "create", "at": "2026-03-02T09:05:00Z", "deal": "A", "fields": {"amount": NaN}}',
             '{"event": "payment", "at": "2026-03-02T09:06:00Z", "deal": "A", "amount": -Infinity}']
    with pytest.raises(ScenarioInvalid) as info:
        run_scenario(lines, sorted(SAMPLE_RULES.glob("*.json")))
    assert "scenario:2: NaN is not a JSON value" in str(info.value)
    assert "scenario:3: -Infinity is not a JSON value" in str(info.value)


# -- section 2: simulator fields ----------------------------------------------------------------------
def test_a_scenario_event_with_non_object_fields_prints_an_error_and_the_run_goes_on():
    lines = ['{"event": "manager", "at": "2026-03-02T09:00:00Z", "name": "Olena"}',
             '{"event": "create", "at": "2026-03-02T09:05:00Z", "deal": "A", "fields": ["amount", 5]}',
             '{"event": "create", "at": "2026-03-02T09:06:00Z", "deal": "B", "fields": {"amount": 1e400}}',
             '{"event": "create", "at": "2026-03-02T09:07:00Z", "deal": "C", "fields": {"amount": 5}}']
    out = run_scenario(lines, sorted(SAMPLE_RULES.glob("*.json")))
    errors = [line for line in out if "error" in line and "action" not in line]
    assert [e["deal"] for e in errors] == ["A", "B"]
    assert "'fields' must be a JSON object" in errors[0]["error"]
    assert "finite number" in errors[1]["error"]
    assert {line["deal"] for line in out if line.get("action") == "assign_manager"} == {"C"}


# -- 1.6 stages deals sit in ----------------------------------------------------------------------------
def test_a_version_without_a_stage_that_deals_sit_in_is_refused(conveyor):
    doc = json.loads(conveyor.export("techflow"))
    keys = [conveyor.deal(conveyor.create_deal("techflow", stage="proposal", title=f"P{n}")).key for n in range(7)]
    slimmer = dict(doc, stages=[s for s in doc["stages"] if s["id"] != "proposal"],
                   transitions=[t for t in doc["transitions"] if "proposal" not in (t["from"], t["to"])],
                   rules=[r for r in doc["rules"] if "proposal" not in json.dumps(r["conditions"])])
    before = len(conveyor.versions("techflow"))
    with pytest.raises(RuleSetInvalid) as info:
        conveyor.save_ruleset(slimmer)
    message = str(info.value)
    assert "stage 'proposal' is missing but 7 deal(s) are in it" in message
    assert ", ".join(keys[:5]) + " …" in message and keys[5] not in message
    assert "move those deals to another stage first" in message
    assert len(conveyor.versions("techflow")) == before
    conveyor.save_ruleset(slimmer, activate=False)  # stored, not active: nothing is stranded
    assert conveyor.ruleset("techflow").stage("proposal") is not None


def test_rolling_back_to_a_version_without_a_stage_that_deals_sit_in_is_refused(conveyor):
    doc = json.loads(conveyor.export("techflow"))
    v1 = conveyor.versions("techflow")[0].version
    richer = dict(doc, stages=[*doc["stages"], {"id": "on_hold", "name": "On hold"}],
                  transitions=[*doc["transitions"], {"from": "on_hold", "to": "incoming"}])
    conveyor.save_ruleset(richer)
    held = conveyor.create_deal("techflow", key="hold-1", stage="on_hold")
    with pytest.raises(InvalidChange, match=r"cannot activate this version \d+ of funnel 'techflow': stage 'on_hold'"
                                            r" is missing but 1 deal\(s\) are in it \(hold-1\)"):
        conveyor.activate("techflow", v1)
    assert conveyor.ruleset("techflow").stage("on_hold") is not None
    conveyor.move_deal(held, "incoming")
    assert conveyor.activate("techflow", v1).active


# -- 1.7 complete_task ---------------------------------------------------------------------------------
def test_a_task_completed_by_someone_else_meanwhile_is_recorded_once(conveyor, db_url, clock, monkeypatch):
    deal = conveyor.create_deal("techflow", title="Lead")
    run_until_idle(conveyor)
    with conveyor.session() as s:
        [task] = repo.list_tasks(s, deal_id=deal, status="open")
        task_id, seq_before = task.id, s.get(Deal, deal).activity_seq
    other = Conveyor(db_url, clock=clock)
    real_change = conveyor._change

    def change_after_the_other_click(*args: Any, **kwargs: Any) -> None:
        other.complete_task(task_id)  # the other manager's click lands between our read and our write
        real_change(*args, **kwargs)

    monkeypatch.setattr(conveyor, "_change", change_after_the_other_click)
    try:
        conveyor.complete_task(task_id)
    finally:
        other.close()
    assert len(events(conveyor, deal, "task_done")) == 1
    with conveyor.session() as s:
        assert s.get(Task, task_id).status == "done"
        assert s.get(Deal, deal).activity_seq == seq_before + 1


# -- 1.8 a dead action stops the rest of its rule --------------------------------------------------------
INVOICE = funnel("billing", [rule("invoice_and_sms", "start", [
    {"name": "generate_invoice", "params": {}},
    {"name": "send_sms", "params": {"text": "Please pay invoice {invoice_number}"}},
    {"name": "notify_manager", "params": {"text": "Invoice {invoice_number} sent"}}])])


def _outbox(c: Conveyor, deal_id: int) -> list[tuple[str, str, str | None]]:
    with c.session() as s:
        rows = s.scalars(sa.select(OutboxAction).where(OutboxAction.deal_id == deal_id).order_by(OutboxAction.seq))
        return [(r.action, r.status, r.last_error) for r in rows]


def test_a_dead_action_marks_the_later_actions_of_its_rule_dead_and_retry_requeues_them(conveyor, db_url):
    conveyor.save_ruleset(INVOICE)
    deal = conveyor.create_deal("billing", title="Acme", fields={"phone": "+380501234567", "amount": 10})
    sqlite_exec(db_url, "CREATE TRIGGER no_invoices BEFORE INSERT ON invoices "
                        "BEGIN SELECT RAISE(ABORT, 'invoice numbering is locked'); END;")
    once = RetryPolicy(max_attempts=1)
    dispatch_internal(conveyor, policy=once)
    dispatch_messages(conveyor, policy=once)
    rows = _outbox(conveyor, deal)
    first_id = _outbox_id(conveyor, deal, "generate_invoice")
    assert rows[0][:2] == ("generate_invoice", "dead") and "invoice numbering is locked" in rows[0][2]
    for action, status, error in rows[1:]:
        assert status == "dead", action
        assert error.startswith(f"skipped: earlier action {first_id} (generate_invoice) is dead: ")
    assert run_until_idle(conveyor) == []  # nothing runs without the invoice
    with conveyor.session() as s:
        assert repo.list_messages(s, deal) == [] and repo.list_tasks(s, deal_id=deal) == []

    sqlite_exec(db_url, "DROP TRIGGER no_invoices")
    retry(conveyor, first_id)
    assert [status for _, status, _ in _outbox(conveyor, deal)] == ["pending"] * 3
    run_until_idle(conveyor)
    assert [status for _, status, _ in _outbox(conveyor, deal)] == ["done"] * 3
    with conveyor.session() as s:
        [message] = repo.list_messages(s, deal)
        number = s.get(Deal, deal).invoice_number
    assert number and message.text == f"Please pay invoice {number}"


def _outbox_id(c: Conveyor, deal_id: int, action: str) -> int:
    with c.session() as s:
        return s.scalar(sa.select(OutboxAction.id).where(OutboxAction.deal_id == deal_id,
                                                         OutboxAction.action == action))


def test_a_dead_message_skips_the_rest_of_its_rule(conveyor):
    conveyor.save_ruleset(INVOICE)
    deal = conveyor.create_deal("billing", title="Acme", fields={"phone": "not a phone"})
    run_until_idle(conveyor)
    rows = _outbox(conveyor, deal)
    assert [status for _, status, _ in rows] == ["done", "dead", "dead"]
    assert "bad phone number" in rows[1][2]
    assert rows[2][2].startswith(f"skipped: earlier action {_outbox_id(conveyor, deal, 'send_sms')} (send_sms)")


# -- 1.9 one rule-folder loader ------------------------------------------------------------------------
def test_a_chain_of_started_processes_loads_whatever_the_file_names(db_url, clock, chain_folder):
    c = Conveyor(db_url, clock=clock)
    try:
        saved = c.load_rules_dir(chain_folder)
        assert [v.funnel for v in saved] == ["chain_c", "chain_b", "chain_a"]
    finally:
        c.close()
    lines = ['{"event": "manager", "at": "2026-03-02T09:00:00Z", "name": "Olena"}',
             '{"event": "create", "at": "2026-03-02T09:05:00Z", "deal": "A", "funnel": "chain_a"}']
    out = run_scenario(lines, sorted(chain_folder.glob("*.json")))
    assert [line["action"] for line in out] == ["start_process", "start_process", "notify_manager"]


def test_processes_that_start_each_other_load_too(db_url, clock, tmp_path):
    ping = funnel("ping", [rule("to_pong", "next", [{"name": "start_process", "params": {"funnel": "pong"}}])])
    pong = funnel("pong", [rule("to_ping", "next", [{"name": "start_process", "params": {"funnel": "ping"}}])])
    for name, doc in (("ping.json", ping), ("pong.json", pong)):
        (tmp_path / name).write_text(json.dumps(doc), encoding="utf-8")
    c = Conveyor(db_url, clock=clock)
    try:
        assert sorted(v.funnel for v in c.load_rules_dir(tmp_path)) == ["ping", "pong"]
    finally:
        c.close()


@pytest.mark.parametrize(("text", "message"), [
    ('{"funnel": "x", "funnel": "y"}', "key 'funnel' appears twice"),
    ("[1, 2]", "broken.json: a rule set must be a JSON object, not list"),
    ('{"funnel": NaN}', "NaN is not a JSON value"),
    ('{"funnel": ', "is not valid JSON"),
], ids=["duplicate-key", "not-an-object", "nan", "syntax"])
def test_a_bad_file_in_a_rule_folder_is_a_clear_error_and_nothing_is_saved(db_url, clock, tmp_path, text, message):
    (tmp_path / "a_good.json").write_text((SAMPLE_RULES / "project_work.json").read_text("utf-8"), "utf-8")
    (tmp_path / "broken.json").write_text(text, encoding="utf-8")
    c = Conveyor(db_url, clock=clock)
    try:
        with pytest.raises(RuleSetInvalid, match=message):
            c.load_rules_dir(tmp_path)
        assert c.funnels() == []
    finally:
        c.close()
    with pytest.raises(RuleSetInvalid, match=message):
        run_scenario(['{"event": "end", "at": "2026-03-02T09:00:00Z"}'], sorted(tmp_path.glob("*.json")))


# -- 1.11 races become "try again" ------------------------------------------------------------------------
def _race(pg_url: str, competing_sql: str, call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` while another transaction holds an uncommitted ``competing_sql``; commit it once
    ``call`` waits on its lock, so ``call``'s own insert collides. Returns what ``call`` raised."""
    eng = sa.create_engine(pg_url)
    raised: list[BaseException | None] = []
    try:
        with eng.connect() as conn:
            tx = conn.begin()
            conn.exec_driver_sql(competing_sql)

            def run() -> None:
                try:
                    call()
                    raised.append(None)
                except BaseException as exc:  # noqa: BLE001 - handed to the test
                    raised.append(exc)

            worker = threading.Thread(target=run)
            worker.start()
            deadline = time.monotonic() + 30
            while not _waiting_on_lock(eng) and worker.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            tx.commit()
            worker.join(60)
    finally:
        eng.dispose()
    return raised[0] if raised else None


def _waiting_on_lock(eng: sa.Engine) -> bool:
    with eng.connect() as conn:
        return bool(conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).scalar())


@pytest.fixture
def pg_conveyor(pg_url: str, clock: Any) -> Iterator[Conveyor]:
    c = Conveyor(pg_url, clock=clock)
    c.load_rules_dir(SAMPLE_RULES)
    yield c
    c.close()


def test_concurrent_saves_of_one_funnel_end_in_try_again(pg_conveyor, pg_url):
    doc = pg_conveyor.export("techflow")
    exc = _race(pg_url, "INSERT INTO ruleset_versions (funnel_id, version, document, fingerprint, comment, author,"
                        " created_at) SELECT funnel_id, 2, document, fingerprint, 'other', 'other', created_at"
                        " FROM ruleset_versions WHERE funnel_id = 'techflow'",
                lambda: pg_conveyor.save_ruleset(doc, comment="mine"))
    assert isinstance(exc, ConveyorError) and not isinstance(exc, sa.exc.DBAPIError)
    assert "someone saved a version of funnel 'techflow' at the same time" in str(exc) and "try again" in str(exc)
    assert [v.comment for v in pg_conveyor.versions("techflow")][0] == "other"


def test_concurrent_first_saves_of_a_new_funnel_end_in_try_again(pg_conveyor, pg_url):
    exc = _race(pg_url, "INSERT INTO funnels (id, name, created_at) VALUES ('chain_c', 'Other', now())",
                lambda: pg_conveyor.save_ruleset(CHAIN_C))
    assert isinstance(exc, ConveyorError) and "at the same time" in str(exc) and "try again" in str(exc)


def test_concurrent_managers_of_one_name_end_in_try_again(pg_conveyor, pg_url):
    exc = _race(pg_url, "INSERT INTO managers (name, phone, active, assign_seq) VALUES ('Ivan', '', true, 0)",
                lambda: pg_conveyor.add_manager("Ivan"))
    assert isinstance(exc, InvalidChange)
    assert "a manager named 'Ivan' was added by someone else at the same time; refresh and try again" in str(exc)
    assert [m for m in pg_conveyor.funnels()]  # the conveyor still works after the collision
    assert pg_conveyor.add_manager("Ivanna") > 0

"""Message providers against a real HTTP gateway on 127.0.0.1: timeouts, 500s, permanent 4xx errors,
bad phone numbers and slow responses. Messages are at least once with one idempotency key, never
resent once the gateway acknowledged them, and a slow gateway delays nothing else.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from engine.cli import main as cli
from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import RetryPolicy, dispatch_internal, dispatch_messages, retry
from engine.outbox.providers import WebhookProvider, provider_from_url
from storage import repositories as repo
from tests.support.engine_world import seed, settled, start_engine, stop, wait_for
from tests.support.sessions import db_session
from tests.support.webhook import Gateway

COUNTERPARTY = {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}
POLICY = RetryPolicy(max_attempts=4, base=timedelta(seconds=30))


def _contract_deal(conveyor: Conveyor, phone: str = "+380501234567") -> int:
    deal = conveyor.create_deal(
        "techflow",
        title="Acme",
        stage="contract",
        fields={"phone": phone, "amount": 1000, **COUNTERPARTY},
    )
    dispatch_internal(conveyor, policy=POLICY)  # the invoice; the SMS is next in line
    return deal


def _sms_row(conveyor: Conveyor, deal: int):
    with db_session(conveyor) as s:
        return next(a for a, _f in repo.list_outbox(s, deal_id=deal) if a.action == "send_sms")


def _retry_when_due(conveyor: Conveyor, clock, deal: int) -> None:
    row = _sms_row(conveyor, deal)
    clock.set(max(clock.now(), row.next_attempt_at))
    dispatch_messages(conveyor, policy=POLICY)


def test_a_timed_out_message_is_reconciled_not_resent_when_the_gateway_got_it(conveyor, clock):
    with Gateway(lambda m: "slow", delay=1.5) as gw:
        conveyor.provider = WebhookProvider(gw.url, timeout=0.3)
        deal = _contract_deal(conveyor)
        [first] = dispatch_messages(conveyor, policy=POLICY)
        assert first.status == "failed" and "timed out after 0.3 s" in first.error
        row = _sms_row(conveyor, deal)
        assert row.attempts == 1 and row.next_attempt_at > clock.now()  # backoff, not at once
        # the gateway did process the slow request after our timeout
        wait_for(
            lambda: gw.acknowledged[row.idempotency_key] == 1, 10, "the slow request to finish"
        )
        _retry_when_due(conveyor, clock, deal)
        row = _sms_row(conveyor, deal)
        assert row.status == "done" and row.result["to"] == "+380501234567"
        assert gw.keys() == {row.idempotency_key: 1}  # asked, not resent


def test_server_errors_are_retried_with_the_same_key_until_the_gateway_accepts(conveyor, clock):
    calls = []

    def behave(msg: dict) -> str:
        calls.append(msg)
        return "error500" if len(calls) <= 2 else "ok"

    with Gateway(behave) as gw:
        conveyor.provider = WebhookProvider(gw.url, timeout=2)
        deal = _contract_deal(conveyor)
        dispatch_messages(conveyor, policy=POLICY)
        delays = []
        for _ in range(2):
            row = _sms_row(conveyor, deal)
            assert row.status == "failed" and "HTTP 500" in row.last_error
            delays.append(row.next_attempt_at - clock.now())
            _retry_when_due(conveyor, clock, deal)
        row = _sms_row(conveyor, deal)
        keys = gw.keys()
    assert row.status == "done" and row.attempts == 3
    assert keys == {row.idempotency_key: 3}  # three tries, one key: the gateway can de-duplicate
    assert all(m["header_key"] == m["idempotency_key"] == row.idempotency_key for m in calls)
    # exponential backoff with ±20 % jitter: 30 s, then about 60 s
    assert timedelta(seconds=24) <= delays[0] <= timedelta(seconds=36)
    assert timedelta(seconds=48) <= delays[1] <= timedelta(seconds=72)


def test_a_gateway_that_keeps_failing_ends_dead_and_visible(conveyor, clock, backend):
    with Gateway("error500") as gw:
        conveyor.provider = WebhookProvider(gw.url, timeout=2)
        deal = _contract_deal(conveyor)
        dispatch_messages(conveyor, policy=POLICY)
        for _ in range(POLICY.max_attempts - 1):
            _retry_when_due(conveyor, clock, deal)
        row = _sms_row(conveyor, deal)
        assert len(gw.received) == POLICY.max_attempts
    assert row.status == "dead" and row.attempts == POLICY.max_attempts
    out = CliRunner().invoke(cli, ["--db", backend, "actions", "--status", "dead"])
    assert out.exit_code == 0
    assert f"#{row.id}" in out.output and "send_sms" in out.output
    assert "error: webhook answered HTTP 500" in out.output
    status = CliRunner().invoke(cli, ["--db", backend, "status"])
    assert "dead 1" in status.output and "1 dead action(s)" in status.output


def test_a_permanent_rejection_is_not_retried(conveyor, clock):
    with Gateway("reject400") as gw:
        conveyor.provider = WebhookProvider(gw.url, timeout=2)
        deal = _contract_deal(conveyor)
        [result] = dispatch_messages(conveyor, policy=POLICY)
        clock.advance(timedelta(days=2))
        assert dispatch_messages(conveyor, policy=POLICY) == []  # nothing left to try
        assert len(gw.received) == 1
    row = _sms_row(conveyor, deal)
    assert result.status == "dead" and row.status == "dead" and row.attempts == 1
    assert "HTTP 400" in row.last_error and "invalid recipient" in row.last_error


def test_a_bad_phone_number_never_reaches_the_gateway(conveyor):
    with Gateway("ok") as gw:
        conveyor.provider = WebhookProvider(gw.url, timeout=2)
        deal = _contract_deal(conveyor, phone="12-34")
        [result] = dispatch_messages(conveyor, policy=POLICY)
        assert gw.received == []
    assert result.status == "dead" and "bad phone number '12-34'" in result.error
    assert _sms_row(conveyor, deal).status == "dead"


def test_an_unreachable_gateway_is_a_transient_failure(conveyor):
    with Gateway("ok") as gw:
        url = gw.url
    conveyor.provider = WebhookProvider(url, timeout=1)  # the server is gone: connection refused
    _contract_deal(conveyor)
    [result] = dispatch_messages(conveyor, policy=POLICY)
    assert result.status == "failed" and "webhook unreachable" in result.error


@pytest.mark.parametrize("value, problem", [("abc", "is not a number"), ("0", "must be positive")])
def test_a_bad_provider_timeout_setting_is_named(monkeypatch, value, problem):
    monkeypatch.setenv("CONVEYOR_PROVIDER_TIMEOUT", value)
    with pytest.raises(ValueError, match=f"CONVEYOR_PROVIDER_TIMEOUT='{value}' {problem}"):
        provider_from_url("http://127.0.0.1:9/send")


@pytest.mark.slow
def test_a_hanging_gateway_delays_neither_ticks_nor_internal_actions(db_url, tmp_path):
    world = seed(db_url, incoming=6, contract=4)
    log = tmp_path / "engine.log"
    with Gateway("hang") as gw:
        engine = start_engine(db_url, log, provider=gw.url, timeout=60, lease=120, workers=2)
        c = Conveyor(db_url)
        try:

            def internal_done() -> bool:
                with db_session(c) as s:
                    rows = [a for a, _f in repo.list_outbox(s, limit=1000)]
                    reminders = [
                        f for f in repo.list_firings(s) if f.rule_id == "incoming_idle_24h"
                    ]
                return len(reminders) == len(world.incoming) and all(
                    a.status == "done" for a in rows if a.kind == "internal"
                )

            # every message is stuck at the gateway, yet the due reminders fire and tasks/invoices are made
            wait_for(
                internal_done,
                60,
                "ticks and internal actions while the gateway hangs",
                [engine],
                [log],
            )
            with db_session(c) as s:
                stuck = [a for a, _f in repo.list_outbox(s) if a.kind == "message"]
            assert all(a.status in ("pending", "sending") for a in stuck) and len(stuck) == 4
            assert gw.max_in_flight <= 2  # bounded: never more calls at once than --workers
            gw.release.set()
            wait_for(
                lambda: settled(c, world),
                60,
                "the messages once the gateway answers",
                [engine],
                [log],
            )
        finally:
            assert stop(engine) == 0
        keys = gw.keys()
    with db_session(c) as s:
        sent = {
            a.idempotency_key
            for a, _f in repo.list_outbox(s)
            if a.kind == "message" and a.status == "done"
        }
    c.close()
    assert len(sent) == 4 and keys == {k: 1 for k in sent}


def test_a_dead_message_retried_after_fixing_the_number_goes_to_the_new_number_with_the_same_key(
    conveyor, clock
):
    with Gateway(lambda m: "reject400" if m["to"] == "+380500000000" else "ok") as gw:
        conveyor.provider = WebhookProvider(gw.url, timeout=2)
        deal = _contract_deal(conveyor, phone="+380500000000")
        dispatch_messages(conveyor, policy=POLICY)
        row = _sms_row(conveyor, deal)
        assert row.status == "dead"
        conveyor.update_deal(deal, {"phone": "+380671234567"})
        retry(conveyor, row.id)
        [result] = dispatch_messages(conveyor, policy=POLICY)
        assert [m["to"] for m in gw.received] == ["+380500000000", "+380671234567"]
        assert {m["header_key"] for m in gw.received} == {row.idempotency_key}
    assert result.status == "done" and _sms_row(conveyor, deal).status == "done"
    with db_session(conveyor) as s:
        [message] = repo.list_messages(s, deal)
    assert message.to == "+380671234567" and message.status == "sent"

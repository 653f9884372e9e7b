"""The honest states reach the people: ``conveyor actions``, the deal card and the actions review say
``recorded`` for a message no provider carried, ``sent`` with the gateway's id, ``delivered``, and
``failed`` with the gateway's answer — never "sent" for a message that was only recorded."""

from __future__ import annotations

from click.testing import CliRunner

from engine.cli import main as cli
from engine.outbox.dispatcher import dispatch_internal, dispatch_messages, record_delivery
from tests.support.channels import router_from_toml
from tests.support.gateways import TwilioApi

COUNTERPARTY = {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}
SID, TOKEN = "AC" + "1" * 32, "tok-for-the-listing"


def _contract(conveyor, phone: str = "+380501234567") -> int:
    deal = conveyor.create_deal(
        "techflow",
        title="Acme",
        stage="contract",
        fields={"phone": phone, "amount": 1000, **COUNTERPARTY},
    )
    dispatch_internal(conveyor)
    return deal


def test_conveyor_actions_says_recorded_not_sent_without_a_provider(conveyor, backend):
    _contract(conveyor)
    dispatch_messages(conveyor)
    out = CliRunner().invoke(cli, ["--db", backend, "actions", "--status", "recorded"])
    assert out.exit_code == 0, out.output
    assert "recorded " in out.output and "send_sms" in out.output
    assert "recorded only: no provider is configured for this channel" in out.output
    assert (
        CliRunner()
        .invoke(cli, ["--db", backend, "actions", "--status", "sent"])
        .output.startswith("no sent")
    )


def test_sent_delivered_and_failed_with_the_gateways_id_and_answer(conveyor, backend, tmp_path):
    with TwilioApi(SID, TOKEN) as api:
        conveyor.provider = router_from_toml(
            tmp_path,
            (
                f'[channels.sms]\nprovider = "twilio"\naccount_sid = "{SID}"\nauth_token = "${{T}}"\n'
                f'from = "+15005550006"\nbase_url = "{api.base_url}"\n'
            ),
            {"T": TOKEN},
        )
        good, bad = _contract(conveyor), _contract(conveyor, "+380671112233")
        dispatch_messages(conveyor)
        sids = {m.to: m.sid for m in api.messages}
    listing = CliRunner().invoke(cli, ["--db", backend, "actions", "--status", "sent"]).output
    assert listing.count("sent ") == 2 and sids["+380501234567"] in listing  # the gateway's id
    record_delivery(conveyor, "twilio", sids["+380501234567"], "delivered")
    record_delivery(
        conveyor,
        "twilio",
        sids["+380671112233"],
        "undelivered",
        "30003: Unreachable destination handset",
    )
    delivered = (
        CliRunner().invoke(cli, ["--db", backend, "actions", "--status", "delivered"]).output
    )
    assert "delivered" in delivered and conveyor.deal(good).key in delivered
    trouble = (
        CliRunner().invoke(cli, ["--db", backend, "actions"]).output
    )  # default: failed and dead
    assert "failed " in trouble and conveyor.deal(bad).key in trouble
    assert (
        "gateway: twilio reported the message" in trouble
        and "30003: Unreachable destination handset" in trouble
    )
    card = conveyor.reports.deal_card(bad)
    [row] = card.messages.to_dict("records")
    assert (
        row["status"] == "failed"
        and "30003" in row["error"]
        and row["gateway_id"] == sids["+380671112233"]
    )
    log = conveyor.reports.action_log()
    assert set(log[log["action"] == "send_sms"]["message"]) == {"delivered", "failed"}

"""SMS through a local server that speaks Twilio's Messages API: form-encoded, basic auth, 201 with the
message's sid, which is kept; status callbacks (``record_delivery``) make it delivered or failed; 429
waits its Retry-After; 5xx and timeouts are retried, and a timed-out message Twilio did accept is
found by reconciliation (the recipient's newest messages), not sent twice."""

from __future__ import annotations

from datetime import timedelta

from engine.outbox.dispatcher import dispatch_internal, dispatch_messages, record_delivery, retry
from engine.outbox.providers.twilio import verify_signature
from storage import repositories as repo
from tests.support.channels import router_from_toml
from tests.support.gateways import TwilioApi
from tests.support.sessions import db_session

SID, TOKEN = "AC" + "0" * 31 + "1", "twilio-auth-token-0123456789"
SENDER = "+15005550006"
COUNTERPARTY = {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}


def _config(base_url: str) -> str:
    return (
        f'[channels.sms]\nprovider = "twilio"\naccount_sid = "${{TWILIO_ACCOUNT_SID}}"\n'
        f'auth_token = "${{TWILIO_AUTH_TOKEN}}"\nfrom = "{SENDER}"\nbase_url = "{base_url}"\n'
        f'status_callback = "https://hooks.techflow.example/hooks/twilio/status"\n'
    )


def _contract_deal(
    conveyor, tmp_path, api: TwilioApi, timeout: str = "5", phone: str = "+380 50 123 45 67"
) -> int:
    conveyor.provider = router_from_toml(
        tmp_path,
        _config(api.base_url),
        {
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "CONVEYOR_PROVIDER_TIMEOUT": timeout,
        },
        clock=conveyor.clock,
    )
    deal = conveyor.create_deal(
        "techflow",
        title="Acme",
        stage="contract",
        fields={"phone": phone, "amount": 1000, **COUNTERPARTY},
    )
    dispatch_internal(conveyor)  # the invoice; the SMS quotes it
    return deal


def _sms(conveyor, deal: int):
    with db_session(conveyor) as s:
        [m] = repo.list_messages(s, deal)
        [row] = [a for a, _f in repo.list_outbox(s, deal_id=deal) if a.kind == "message"]
        return m, row


def test_an_sms_reaches_twilio_in_ukrainian_and_keeps_its_sid(conveyor, tmp_path):
    with TwilioApi(SID, TOKEN) as api:
        deal = _contract_deal(conveyor, tmp_path, api)
        [result] = dispatch_messages(conveyor)
    assert result.status == "done"
    [call] = api.calls
    assert call["To"] == "+380501234567" and call["From"] == SENDER  # E.164 for Twilio
    assert call["content_type"] == "application/x-www-form-urlencoded"
    assert call["StatusCallback"] == "https://hooks.techflow.example/hooks/twilio/status"
    assert (
        "рахунком" in call["Body"] and "INV-" in call["Body"]
    )  # the sample's client SMS is Ukrainian
    m, row = _sms(conveyor, deal)
    assert m.status == "sent" and m.provider == "twilio" and m.provider_ref == api.messages[0].sid
    assert row.result["gateway_id"] == api.messages[0].sid


def test_status_callbacks_make_it_delivered_or_failed_with_the_gateways_answer(
    conveyor, tmp_path, clock
):
    with TwilioApi(SID, TOKEN) as api:
        good = _contract_deal(conveyor, tmp_path, api)
        bad = conveyor.create_deal(
            "techflow",
            title="Globex",
            stage="contract",
            fields={"phone": "+380671112233", "amount": 5, **COUNTERPARTY},
        )
        dispatch_internal(conveyor)
        dispatch_messages(conveyor)
        good_sid, bad_sid = (_sms(conveyor, d)[0].provider_ref for d in (good, bad))
        assert record_delivery(conveyor, "twilio", good_sid, "sent")  # no news: stays sent
        assert _sms(conveyor, good)[0].status == "sent"
        api.set_status(good_sid, "delivered")
        api.set_status(bad_sid, "undelivered")
        assert record_delivery(conveyor, "twilio", good_sid, "delivered")
        assert record_delivery(
            conveyor, "twilio", good_sid, "sent"
        )  # late and out of order: ignored
        assert record_delivery(
            conveyor, "twilio", bad_sid, "undelivered", "30003: Unreachable destination handset"
        )
        assert not record_delivery(conveyor, "twilio", "SMunknown", "delivered")
        assert _sms(conveyor, good)[0].status == "delivered"
        m, row = _sms(conveyor, bad)
        assert m.status == "failed" and row.status == "done"
        assert "undelivered: 30003: Unreachable destination handset" in row.last_error
        # The owner can send it again (the client did not get it): reconciliation sees Twilio's
        # "undelivered" and does not count it, so the retry reaches Twilio once more.
        retry(conveyor, row.id)
        [again] = dispatch_messages(conveyor)
        assert again.status == "done" and len(api.bodies_to("+380671112233")) == 2
    assert _sms(conveyor, bad)[0].status == "sent"


def test_a_429_waits_its_retry_after_and_5xx_is_retried_with_backoff(conveyor, tmp_path, clock):
    answers = iter(["rate429", "error500", "ok"])
    with TwilioApi(SID, TOKEN, lambda _c: next(answers), retry_after=4) as api:
        deal = _contract_deal(conveyor, tmp_path, api)
        [first] = dispatch_messages(conveyor)
        m, row = _sms(conveyor, deal)
        assert (
            first.status == "pending" and "HTTP 429: error 20429: Too Many Requests" in first.error
        )
        assert row.next_attempt_at == clock.now() + timedelta(seconds=4) and row.attempts == 0
        clock.advance(timedelta(seconds=4))
        [second] = dispatch_messages(conveyor)
        assert second.status == "failed" and "HTTP 500" in second.error
        m, row = _sms(conveyor, deal)
        assert m.status == "failed" and row.attempts == 1
        clock.set(row.next_attempt_at)
        [third] = dispatch_messages(conveyor)
    assert third.status == "done" and len(api.calls) == 3 and len(api.messages) == 1
    # the retry after the 500 asked Twilio first (the recipient's newest messages), found none, and sent
    assert len(api.lists) == 2


def test_a_timed_out_sms_that_twilio_accepted_is_reconciled_not_sent_twice(
    conveyor, tmp_path, clock
):
    answers = iter(["slow", "ok"])
    with TwilioApi(SID, TOKEN, lambda _c: next(answers), delay=1.5) as api:
        deal = _contract_deal(conveyor, tmp_path, api, timeout="0.5")
        [first] = dispatch_messages(conveyor)
        assert first.status == "failed" and "timed out" in first.error
        clock.set(_sms(conveyor, deal)[1].next_attempt_at)
        [second] = dispatch_messages(conveyor)
        sid = api.messages[0].sid
    assert second.status == "done"
    assert len(api.calls) == 1 and len(api.messages) == 1  # asked, found, not resent
    m, _row = _sms(conveyor, deal)
    assert m.status == "sent" and m.provider_ref == sid


def test_an_invalid_number_is_dead_with_twilios_error_code(conveyor, tmp_path):
    with TwilioApi(SID, TOKEN, "reject") as api:
        deal = _contract_deal(conveyor, tmp_path, api)
        [result] = dispatch_messages(conveyor)
    assert (
        result.status == "dead"
        and "HTTP 400: error 21211: Invalid 'To' Phone Number" in result.error
    )
    assert _sms(conveyor, deal)[0].status == "dead"
    assert TOKEN not in result.error


def test_wrong_credentials_are_refused_by_twilio_and_never_printed(conveyor, tmp_path):
    with TwilioApi(SID, "another-token") as api:
        _contract_deal(conveyor, tmp_path, api)
        [result] = dispatch_messages(conveyor)
    assert result.status == "dead" and "HTTP 401: error 20003: Authenticate" in result.error
    assert TOKEN not in result.error and api.messages == []


def test_status_callback_signatures_are_checked_as_twilio_documents():
    # https://www.twilio.com/docs/usage/security#validating-requests (the documented example)
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert verify_signature("12345", url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not verify_signature(
        "12345", url, {**params, "Digits": "9"}, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    assert not verify_signature("12345", url, params, None)


def test_a_status_callback_is_checked_with_the_channels_own_token(tmp_path):
    from engine.outbox.providers.twilio import TwilioProvider

    router = router_from_toml(
        tmp_path,
        _config("https://api.twilio.com"),
        {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN},
    )
    twilio = router.provider_for("sms")
    assert isinstance(twilio, TwilioProvider)
    url = "https://hooks.techflow.example/hooks/twilio/status"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "AccountSid": SID}
    import base64
    import hashlib
    import hmac

    good = base64.b64encode(
        hmac.new(
            TOKEN.encode(),
            (url + "".join(k + params[k] for k in sorted(params))).encode(),
            hashlib.sha1,
        ).digest()
    ).decode()
    assert twilio.callback_valid(url, params, good)
    assert not twilio.callback_valid(url, {**params, "MessageStatus": "failed"}, good)

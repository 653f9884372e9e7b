"""The webhook channel signs every call like the inbound hooks (``Conveyor-Signature: t=…,v1=…``) and
the receiving side verifies it on its own; a redirect is refused on every HTTP channel."""

from __future__ import annotations

import pytest

from engine.errors import PermanentSendError
from engine.outbox.dispatcher import dispatch_internal, dispatch_messages
from engine.outbox.providers import OutgoingMessage
from engine.outbox.signing import sign, verify
from tests.support.channels import router_from_toml
from tests.support.gateways import SignedHookReceiver

SECRET = "whsec-0123456789abcdef"
COUNTERPARTY = {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}


def _webhook_config(url: str, channel: str = "sms") -> str:
    return (
        f'[channels.{channel}]\nprovider = "webhook"\nurl = "{url}"\nsecret = "${{HOOK_SECRET}}"\n'
    )


def test_a_signed_outbound_webhook_verifies_on_the_receiving_side(conveyor, tmp_path):
    with SignedHookReceiver(SECRET) as receiver:
        conveyor.provider = router_from_toml(
            tmp_path, _webhook_config(receiver.url), {"HOOK_SECRET": SECRET}
        )
        conveyor.create_deal(
            "techflow",
            title="Acme",
            stage="contract",
            fields={"phone": "+380501234567", "amount": 1000, **COUNTERPARTY},
        )
        dispatch_internal(conveyor)
        [result] = dispatch_messages(conveyor)
    assert result.status == "done"
    [post] = receiver.received
    assert post["verified"] and post["method"] == "POST"
    assert b'"channel": "sms"' in post["body"] and b"INV-" in post["body"]


def test_a_receiver_with_another_secret_refuses_it_and_the_message_is_dead(conveyor, tmp_path):
    with SignedHookReceiver("another-secret") as receiver:
        conveyor.provider = router_from_toml(
            tmp_path, _webhook_config(receiver.url), {"HOOK_SECRET": SECRET}
        )
        conveyor.create_deal(
            "techflow",
            title="Acme",
            stage="contract",
            fields={"phone": "+380501234567", "amount": 1000, **COUNTERPARTY},
        )
        dispatch_internal(conveyor)
        [result] = dispatch_messages(conveyor)
    assert result.status == "dead" and "HTTP 401" in result.error
    assert not receiver.received[0]["verified"]


def test_signatures_are_hmac_sha256_over_time_and_body_within_five_minutes():
    body = b'{"text": "hi"}'
    header = sign(SECRET, body, t=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, header, body, now=1_700_000_100)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_100)  # another body
    assert not verify("other", header, body, now=1_700_000_100)
    assert not verify(SECRET, header, body, now=1_700_000_000 + 301)  # a replay after the window
    assert not verify(SECRET, "v1=deadbeef", body) and not verify(SECRET, None, body)


@pytest.mark.parametrize("channel", ["webhook", "telegram", "twilio"])
def test_no_channel_follows_a_redirect(tmp_path, channel):
    with SignedHookReceiver(SECRET) as internal:
        target = internal.url + "?token=INTERNAL-SECRET"
        with SignedHookReceiver(SECRET, redirect_to=target) as redirecting:
            if channel == "webhook":
                text, env, msg_channel = (
                    _webhook_config(redirecting.url),
                    {"HOOK_SECRET": SECRET},
                    "sms",
                )
            elif channel == "telegram":
                text = (
                    f'[channels.telegram]\nprovider = "telegram"\ntoken = "${{TG}}"\n'
                    f'base_url = "{redirecting.base_url}"\n'
                )
                env, msg_channel = {"TG": "1:abc"}, "telegram"
            else:
                text = (
                    f'[channels.sms]\nprovider = "twilio"\naccount_sid = "AC1"\nauth_token = "${{TW}}"\n'
                    f'from = "+15005550006"\nbase_url = "{redirecting.base_url}"\n'
                )
                env, msg_channel = {"TW": "tok"}, "sms"
            router = router_from_toml(tmp_path, text, env)
            message = OutgoingMessage("k-1", msg_channel, "+380501234567", "hi", "D-1")
            with pytest.raises(PermanentSendError, match="HTTP 302 .*redirect.* not followed"):
                router.send(message)
            assert router.reconcile(message) in (None, False)
    assert internal.received == []  # the redirect's target was never asked anything

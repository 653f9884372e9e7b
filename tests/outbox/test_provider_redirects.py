"""The webhook provider never follows a redirect: a 3xx is a permanent error naming the Location.

A real gateway on 127.0.0.1 answers 302 to a second local server (standing for an internal URL)
that records whether it was ever hit; neither ``send`` nor ``delivered`` may reach it, and the
stored reference is never its body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.errors import PermanentSendError
from engine.outbox.dispatcher import dispatch_internal, dispatch_messages, retry
from engine.outbox.providers import OutgoingMessage, WebhookProvider
from storage import repositories as repo
from storage.models import Message
from tests.support.sessions import db_session

COUNTERPARTY = {"company_name": "Acme LLC", "tax_id": "12345678", "billing_address": "Kyiv"}


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def internal() -> Iterator[tuple[_Server, list[str]]]:
    """The internal URL the redirect points at: records every request; answers as a gateway would."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _answer(self) -> None:
            hits.append(f"{self.command} {self.path}")
            n = int(self.headers.get("Content-Length", 0) or 0)
            if n:
                self.rfile.read(n)
            body = json.dumps({"delivered": True, "secret": "INTERNAL-METADATA-BODY"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    server = _Server(Handler)
    yield server, hits
    server.stop()


@pytest.fixture
def redirecting(internal: tuple[_Server, list[str]]) -> Iterator[tuple[str, str]]:
    """A gateway that answers every call with 302 to the internal server; yields (its URL, the Location)."""
    target = f"{internal[0].url}/latest/meta-data?token=LOCATION-TOKEN-42"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _redirect(self) -> None:
            n = int(self.headers.get("Content-Length", 0) or 0)
            if n:
                self.rfile.read(n)
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _redirect

    server = _Server(Handler)
    yield f"{server.url}/send", target
    server.stop()


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_webhook_send_does_not_follow_a_redirect_and_names_its_location(internal, code):
    target = f"{internal[0].url}/internal"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            self.send_response(code)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

    gateway = _Server(Handler)
    try:
        provider = WebhookProvider(gateway.url, timeout=5)
        with pytest.raises(PermanentSendError, match=rf"HTTP {code} .*redirect to {target}"):
            provider.send(OutgoingMessage("k-1", "sms", "+380501112233", "hello", "D-1"))
    finally:
        gateway.stop()
    assert internal[1] == []  # the internal URL was never requested


def test_webhook_reconciliation_does_not_follow_a_redirect(redirecting, internal):
    url, _target = redirecting
    # The internal server would answer {"delivered": true}: following the redirect would wrongly reconcile.
    assert WebhookProvider(url, timeout=5).delivered("k-1") is None
    assert internal[1] == []


def test_a_redirecting_gateway_makes_the_message_dead_with_the_location_masked_and_no_foreign_reference(
    conveyor, redirecting, internal
):
    url, _target = redirecting
    conveyor.provider = WebhookProvider(url, timeout=5)
    deal = conveyor.create_deal(
        "techflow",
        title="Acme",
        stage="contract",
        fields={"phone": "+380501234567", "amount": 1000, **COUNTERPARTY},
    )
    dispatch_internal(conveyor)  # the invoice; the SMS is next in line
    [sent] = dispatch_messages(conveyor)
    assert (
        sent.status == "dead"
    )  # permanent: a redirect is not "delivered", and retrying will not help
    with db_session(conveyor) as s:
        row = next(a for a, _f in repo.list_outbox(s, deal_id=deal) if a.action == "send_sms")
        assert row.status == "dead" and row.attempts == 1
        assert "HTTP 302" in row.last_error and "redirect to" in row.last_error
        assert internal[0].url in row.last_error  # names where it pointed ...
        assert "LOCATION-TOKEN-42" not in row.last_error  # ... without the token in its query
        for m in s.query(Message).all():
            assert "INTERNAL-METADATA-BODY" not in (m.provider_ref or "")
    # a retry reconciles first (the gateway answers 302 again: "cannot tell"), then sends: dead again
    retry(conveyor, row.id)
    [again] = dispatch_messages(conveyor)
    assert again.status == "dead"
    assert internal[1] == []  # neither send nor reconciliation ever reached the internal URL


def test_the_stored_reference_is_bounded_and_printable(internal):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            body = b"\x1b[31mref-" + b"x" * 5000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    gateway = _Server(Handler)
    try:
        ref = (
            WebhookProvider(gateway.url, timeout=5)
            .send(OutgoingMessage("k-2", "sms", "+380501112233", "hi", "D-1"))
            .gateway_id
        )
    finally:
        gateway.stop()
    assert ref is not None and len(ref) <= 200
    assert "\x1b" not in ref and ref.startswith("[31mref-")

"""Webhook reconciliation trusts only a JSON ``true``: every other answer of the gateway means "not known"."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from engine.outbox.providers import WebhookProvider


@pytest.fixture
def answering_gateway() -> Iterator[tuple[str, list[bytes]]]:
    """A real HTTP server on 127.0.0.1 whose GET answer is whatever the test puts in ``answers[0]``."""
    answers: list[bytes] = [b"{}"]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers[0]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/send", answers
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    "body,expected",
    [
        (b'{"delivered": true}', True),
        (b'{"delivered": false}', False),
        (b'{"delivered": "false"}', None),
        (b'{"delivered": "true"}', None),
        (b'{"delivered": 1}', None),
        (b"{}", None),
        (b"[true]", None),
        (b"not json", None),
    ],
    ids=["true", "false", "text-false", "text-true", "one", "missing", "a-list", "not-json"],
)
def test_webhook_delivered_trusts_only_a_json_boolean(
    answering_gateway, body: bytes, expected: bool | None
) -> None:
    url, answers = answering_gateway
    answers[0] = body
    assert WebhookProvider(url, timeout=5).delivered("k-1") is expected

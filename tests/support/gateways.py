"""Real protocol peers on 127.0.0.1 for the delivery tests, each in threads of the test process.

``BotApi`` speaks the Telegram Bot API (``POST /bot<token>/sendMessage``), ``TwilioApi`` Twilio's
Messages API (``POST``/``GET /2010-04-01/Accounts/<sid>/Messages.json``, form-encoded, basic auth,
``201`` with a ``sid``), ``SignedHookReceiver`` a webhook receiver that checks ``Conveyor-Signature``
by itself, and ``smtp_server`` an aiosmtpd server. ``behave(call) -> mode`` decides each answer:
``ok``, ``error500``, ``rate429`` (with ``Retry-After: retry_after``), ``slow`` (answers after
``delay`` seconds, having accepted), ``reject`` (a 4xx the gateway documents), or ``accept_then_500``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

Behave = Callable[[dict[str, Any]], str] | str


def _behaviour(behave: Behave) -> Callable[[dict[str, Any]], str]:
    return behave if callable(behave) else (lambda _call, b=behave: b)


class _Peer:
    """A threaded HTTP server whose handler calls ``self.handle(method, path, headers, body)``."""

    def __init__(self) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                code, headers, payload = peer.handle(
                    self.command, self.path, dict(self.headers), body
                )
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout): that is what some tests do

            do_GET = do_POST = _serve

        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class BotApi(_Peer):
    """The Telegram Bot API's ``sendMessage`` for one bot ``token``."""

    def __init__(
        self, token: str, behave: Behave = "ok", *, delay: float = 0.0, retry_after: int = 3
    ):
        super().__init__()
        self.token = token
        self.behave = _behaviour(behave)
        self.delay = delay
        self.retry_after = retry_after
        self.calls: list[dict[str, Any]] = []  # every sendMessage, in arrival order
        self.delivered: list[dict[str, Any]] = []  # the ones answered ok (the client has them)
        self.next_id = 100

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        if path != f"/bot{self.token}/sendMessage" or method != "POST":
            return 404, {}, {"ok": False, "error_code": 404, "description": "Not Found"}
        request = json.loads(body or b"{}")
        call = {**request, "at": time.monotonic(), "content_type": headers.get("Content-Type")}
        with self.lock:
            self.calls.append(call)
        mode = self.behave(call)
        if mode == "rate429":
            return (
                429,
                {"Retry-After": str(self.retry_after)},
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {self.retry_after}",
                    "parameters": {"retry_after": self.retry_after},
                },
            )
        if mode == "error500":
            return 500, {}, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        if mode == "reject":
            return (
                400,
                {},
                {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
            )
        with self.lock:
            self.next_id += 1
            message_id = self.next_id
            self.delivered.append(call)
        if mode == "slow":
            time.sleep(self.delay)  # delivered, but the answer comes after the sender's timeout
        if mode == "accept_then_500":
            return 500, {}, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        return (
            200,
            {},
            {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "chat": {"id": request.get("chat_id")},
                    "date": int(time.time()),
                    "text": request.get("text"),
                },
            },
        )


@dataclass
class TwilioMessage:
    sid: str
    to: str
    from_: str
    body: str
    status: str
    date_created: datetime
    status_callback: str | None = None
    auth: str = ""


class TwilioApi(_Peer):
    """Twilio's Messages API for one account: create (``201`` + sid), list by To/From, basic auth."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        behave: Behave = "ok",
        *,
        delay: float = 0.0,
        retry_after: int = 2,
    ):
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.behave = _behaviour(behave)
        self.delay = delay
        self.retry_after = retry_after
        self.calls: list[dict[str, Any]] = []  # every create request
        self.messages: list[TwilioMessage] = []  # every message Twilio accepted
        self.lists: list[dict[str, list[str]]] = []  # every list (reconciliation) query

    def _authorised(self, headers: dict[str, str]) -> bool:
        expected = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        return hmac.compare_digest(headers.get("Authorization", ""), expected)

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        url = urlparse(path)
        if url.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return (
                404,
                {},
                {"code": 20404, "message": "The requested resource was not found", "status": 404},
            )
        if not self._authorised(headers):
            return 401, {}, {"code": 20003, "message": "Authenticate", "status": 401}
        if method == "GET":
            query = parse_qs(url.query)
            with self.lock:
                self.lists.append(query)
                found = [
                    m
                    for m in reversed(self.messages)
                    if m.to == query.get("To", [m.to])[0]
                    and m.from_ == query.get("From", [m.from_])[0]
                ]
            size = int(query.get("PageSize", ["50"])[0])
            return (
                200,
                {},
                {
                    "messages": [self._resource(m) for m in found[:size]],
                    "page": 0,
                    "page_size": size,
                },
            )
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        call = {**form, "at": time.monotonic(), "content_type": headers.get("Content-Type")}
        with self.lock:
            self.calls.append(call)
        mode = self.behave(call)
        if mode == "rate429":
            return (
                429,
                {"Retry-After": str(self.retry_after)},
                {"code": 20429, "message": "Too Many Requests", "status": 429},
            )
        if mode == "error500":
            return 500, {}, {"code": 20500, "message": "Internal Server Error", "status": 500}
        if mode == "reject":
            return (
                400,
                {},
                {
                    "code": 21211,
                    "message": f"Invalid 'To' Phone Number: {form.get('To')}",
                    "status": 400,
                },
            )
        with self.lock:
            m = TwilioMessage(
                f"SM{len(self.messages) + 1:032x}",
                form["To"],
                form.get("From", ""),
                form["Body"],
                "queued",
                datetime.now(UTC),
                form.get("StatusCallback"),
            )
            self.messages.append(m)
        if mode == "slow":
            time.sleep(self.delay)
        if mode == "accept_then_500":
            return 500, {}, {"code": 20500, "message": "Internal Server Error", "status": 500}
        return 201, {}, self._resource(m)

    def _resource(self, m: TwilioMessage) -> dict[str, Any]:
        return {
            "sid": m.sid,
            "account_sid": self.account_sid,
            "to": m.to,
            "from": m.from_,
            "body": m.body,
            "status": m.status,
            "date_created": format_datetime(m.date_created),
            "error_code": None,
            "error_message": None,
            "num_segments": "1",
            "direction": "outbound-api",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{m.sid}.json",
        }

    def set_status(self, sid: str, status: str) -> None:
        """Twilio's own later news about a message (what its status callback reports)."""
        with self.lock:
            next(m for m in self.messages if m.sid == sid).status = status

    def bodies_to(self, to: str) -> list[str]:
        with self.lock:
            return [m.body for m in self.messages if m.to == to]


class SignedHookReceiver(_Peer):
    """A webhook gateway that checks ``Conveyor-Signature`` itself (HMAC-SHA256 over ``"<t>.<body>"``)."""

    def __init__(self, secret: str, *, redirect_to: str | None = None):
        super().__init__()
        self.secret = secret
        self.redirect_to = redirect_to
        self.received: list[dict[str, Any]] = []  # (body, verified) of every POST
        self.url = f"{self.base_url}/hooks/messages"

    def verify(self, header: str | None, body: bytes) -> bool:
        if not header:
            return False
        parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
        t, signature = parts.get("t", ""), parts.get("v1", "")
        if not t.isdigit() or abs(time.time() - int(t)) > 300:
            return False
        expected = hmac.new(
            self.secret.encode(), f"{t}.".encode() + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, signature)

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        verified = self.verify(headers.get("Conveyor-Signature"), body)
        with self.lock:
            self.received.append(
                {"method": method, "path": path, "body": body, "verified": verified}
            )
        if self.redirect_to:
            return 302, {"Location": self.redirect_to}, {}
        if not verified:
            return 401, {}, {"error": "bad signature"}
        if method == "GET":
            return 404, {}, {"error": "no status endpoint"}
        return 200, {}, {"id": f"hook-{len(self.received)}"}


@dataclass
class Mailbox:
    """What an aiosmtpd server received: one entry per message (envelope and parsed message)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)  # recipients answered 550


@contextmanager
def smtp_server(
    *,
    tls_cert: tuple[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    port: int | None = None,
) -> Iterator[tuple[int, Mailbox]]:
    """An aiosmtpd server on 127.0.0.1 (``port``, default a free one); STARTTLS with ``tls_cert``
    (cert, key), AUTH with ``auth``."""
    import email
    import email.policy
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tests.support.processes import free_port

    box = Mailbox()

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address in box.reject:
                return "550 5.1.1 mailbox unavailable"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            box.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "message": parsed,
                    "tls": session.ssl is not None,
                    "authenticated": session.authenticated,
                }
            )
            return f"250 2.0.0 Ok: queued as Q{len(box.messages):04d}"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == auth
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    kwargs: dict[str, Any] = {}
    if tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls_cert)
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = True
    if auth:
        kwargs["authenticator"] = authenticator
        kwargs["auth_require_tls"] = bool(tls_cert)
    port = port or free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()

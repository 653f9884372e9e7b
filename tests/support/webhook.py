"""A real HTTP message gateway on 127.0.0.1 for the engine tests, run in a thread of the test process.

It records every POST (with its ``Idempotency-Key``) and answers ``GET ?idempotency_key=K`` with
``{"delivered": true|false}`` so the dispatcher can reconcile. ``behave`` decides each answer:
``ok``, ``error500``, ``reject400``, ``slow`` (answers after ``delay``), or ``hang`` (holds the
request until ``release`` is set, then accepts it). ``reconcile=False`` makes the GET answer 404 ("cannot tell").
Failures that leave the sender unsure: ``drop`` closes the connection without recording the message;
``accept_then_500``, ``accept_then_drop`` and ``accept_then_stall`` (no answer for ``delay`` seconds,
then the connection closed) record it first, so only the GET can tell the sender it got through.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Gateway:
    def __init__(
        self,
        behave: Callable[[dict], str] | str = "ok",
        *,
        delay: float = 0.0,
        reconcile: bool = True,
    ):
        self.behave = behave if callable(behave) else (lambda _msg, b=behave: b)
        self.delay = delay
        self.reconcile = reconcile
        self.lock = threading.Lock()
        self.received: list[dict] = []  # every POST, in arrival order
        self.acknowledged: Counter[str] = Counter()  # keys answered 2xx
        self.accepted: Counter[str] = Counter()  # keys recorded as delivered (answered 2xx or not)
        self.release = threading.Event()  # frees "hang" handlers (also set on stop)
        self.in_flight = 0
        self.max_in_flight = 0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                key = parse_qs(urlparse(self.path).query).get("idempotency_key", [""])[0]
                if not gateway.reconcile:
                    self._answer(404, {"error": "no status endpoint"})
                    return
                with gateway.lock:
                    delivered = gateway.accepted[key] > 0
                self._answer(200, {"delivered": delivered})

            def do_POST(self) -> None:
                body = json.loads(
                    self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"
                )
                msg = {
                    **body,
                    "header_key": self.headers.get("Idempotency-Key"),
                    "at": time.monotonic(),
                }
                with gateway.lock:
                    gateway.received.append(msg)
                mode = gateway.behave(msg)
                with gateway.lock:
                    gateway.in_flight += 1
                    gateway.max_in_flight = max(gateway.max_in_flight, gateway.in_flight)
                try:
                    if mode == "slow":
                        time.sleep(gateway.delay)
                    elif mode == "hang":  # held until the test releases the gateway, then accepted
                        if not gateway.release.wait(60):
                            return
                    elif mode == "drop":
                        self._drop()
                        return
                    elif mode.startswith("accept_then_"):
                        with gateway.lock:
                            gateway.accepted[msg["header_key"]] += 1
                        if mode == "accept_then_500":
                            self._answer(500, {"error": "gateway overloaded"})
                        else:
                            if mode == "accept_then_stall":
                                time.sleep(gateway.delay)
                            self._drop()
                        return
                    self._reply(mode, msg, body)
                finally:
                    with gateway.lock:
                        gateway.in_flight -= 1

            def _reply(self, mode: str, msg: dict, body: dict) -> None:
                if mode == "error500":
                    self._answer(500, {"error": "gateway overloaded"})
                elif mode == "reject400":
                    self._answer(400, {"error": f"invalid recipient {body.get('to')}"})
                else:
                    with gateway.lock:
                        gateway.acknowledged[msg["header_key"]] += 1
                        gateway.accepted[msg["header_key"]] += 1
                    self._answer(200, {"id": f"gw-{len(gateway.received)}"})

            def _drop(self) -> None:
                """Close the connection without an answer (the sender sees it reset or closed)."""
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _answer(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout) or was killed: that is what some tests do

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def keys(self) -> Counter[str]:
        """How many POSTs arrived per idempotency key."""
        with self.lock:
            return Counter(m["header_key"] for m in self.received)

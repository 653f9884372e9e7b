"""The webhook provider: each message POSTed as JSON to one URL, signed, redirects never followed."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

from engine.errors import PermanentSendError
from engine.outbox.providers.base import OutgoingMessage, Receipt
from engine.outbox.providers.http import call, printable
from engine.outbox.signing import HEADER, sign

#: The most of a gateway's answer kept as the message's reference.
REFERENCE_LIMIT = 200


def payload(message: OutgoingMessage) -> dict[str, str]:
    """What the webhook receives (``subject`` only for e-mail)."""
    body = {
        "idempotency_key": message.idempotency_key,
        "channel": message.channel,
        "to": message.to,
        "text": message.text,
        "deal": message.deal,
    }
    if message.subject:
        body["subject"] = message.subject
    return body


class WebhookProvider:
    """POSTs each message as JSON to ``url`` with an ``Idempotency-Key`` header, signed with ``secret``.

    The signature is ``Conveyor-Signature: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<body>")``, as the
    inbound hooks are signed; the reconciliation GET is signed over an empty body.
    2xx: accepted (the answer's ``id``, or the start of its body, is the reference). 3xx: permanent,
    naming the Location (redirects are never followed, so a gateway cannot send the engine to another
    URL). 429: wait its ``Retry-After``. 4xx (but 408 and 429): permanent. 5xx, 408, timeouts, refused
    connections: transient. ``GET url?idempotency_key=K`` answering 200 with ``{"delivered": true}``
    lets the dispatcher reconcile after a crash instead of resending; ``{"delivered": false}`` means
    not delivered, and any other answer (including the string "true") means "cannot tell".

    ``timeout`` bounds each socket operation (connect, each read), not the whole call: a gateway
    that trickles its answer byte by byte can hold a worker longer (see docs/guarantees.md).
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        secret: str | None = None,
        setting: str = "CONVEYOR_PROVIDER",
    ):
        self.url = url
        self.timeout = timeout
        self._secret = secret
        self._setting = setting  # what to fix when the URL redirects

    def __repr__(self) -> str:
        return f"WebhookProvider(signed={self._secret is not None})"  # never the URL's secrets

    def _headers(self, body: bytes, **extra: str) -> dict[str, str]:
        headers = dict(extra)
        if self._secret:
            headers[HEADER] = sign(self._secret, body)
        return headers

    def send(self, message: OutgoingMessage) -> Receipt:
        body = json.dumps(payload(message), ensure_ascii=False).encode()
        answer = call(
            "POST",
            self.url,
            what="webhook",
            timeout=self.timeout,
            data=body,
            headers=self._headers(
                body,
                **{"Content-Type": "application/json", "Idempotency-Key": message.idempotency_key},
            ),
            hint=f"set {self._setting} to the gateway's final URL",
        )
        if not 200 <= answer.status < 300:
            raise PermanentSendError(f"webhook answered HTTP {answer.status}, not 2xx")
        parsed = answer.json()
        gateway_id = parsed.get("id") if isinstance(parsed, dict) else None
        if isinstance(gateway_id, str | int) and not isinstance(gateway_id, bool):
            return Receipt(printable(str(gateway_id), REFERENCE_LIMIT) or None)
        return Receipt(
            printable(answer.body[:2000].decode(errors="replace"), REFERENCE_LIMIT) or None
        )

    def delivered(self, idempotency_key: str) -> bool | None:
        url = f"{self.url}{'&' if '?' in self.url else '?'}idempotency_key={urllib.parse.quote(idempotency_key)}"
        try:
            answer = call(
                "GET", url, what="webhook", timeout=self.timeout, headers=self._headers(b"")
            )
            parsed = json.loads(answer.body) if answer.status == 200 else None
        except Exception:  # noqa: BLE001 - any failure (a 3xx included) only means "cannot tell": resend
            return None
        # Only a JSON true means delivered: "false", "no" or 1 are not an answer we can trust.
        value = parsed.get("delivered") if isinstance(parsed, dict) else None
        return True if value is True else False if value is False else None

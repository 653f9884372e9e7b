"""The webhook provider: each message POSTed as JSON to one URL, redirects never followed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict

from engine.errors import PermanentSendError, TransientSendError
from engine.outbox.providers.base import OutgoingMessage
from storage.urls import mask_url

#: The most of a gateway's answer kept as the message's reference.
REFERENCE_LIMIT = 200


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is handed back as an ``HTTPError``: a provider call never goes to another URL."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201, PLR0913
        return None


#: Provider calls go through this opener only: no redirects (urllib's default follows them).
_OPENER = urllib.request.build_opener(_NoRedirect)


def _printable_reference(text: str) -> str | None:
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text[:REFERENCE_LIMIT] or None


class WebhookProvider:
    """POSTs each message as JSON to ``url`` with an ``Idempotency-Key`` header.

    2xx: delivered. 3xx: permanent, naming the Location (redirects are never followed, so a
    gateway cannot send the engine to another URL). 4xx (but 408 and 429): permanent. 5xx, 408, 429, timeouts, refused connections:
    transient. ``GET url?idempotency_key=K`` answering 200 with ``{"delivered": true}`` lets the
    dispatcher reconcile after a crash instead of resending; ``{"delivered": false}`` means not
    delivered, and any other answer (including the string "true") means "cannot tell".

    ``timeout`` bounds each socket operation (connect, each read), not the whole call: a gateway
    that trickles its answer byte by byte can hold a worker longer (see docs/guarantees.md).
    """

    name = "webhook"

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url
        self.timeout = timeout

    def send(self, message: OutgoingMessage) -> str | None:
        body = json.dumps(asdict(message), ensure_ascii=False).encode()
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Idempotency-Key": message.idempotency_key})
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:
                if not 200 <= resp.status < 300:  # e.g. a 1xx or 3xx that reached us as a response
                    raise PermanentSendError(f"webhook answered HTTP {resp.status}, not 2xx")
                return _printable_reference(resp.read(2000).decode(errors="replace"))
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                location = exc.headers.get("Location") if exc.headers else None
                where = f" to {mask_url(location)[:300]}" if location else " without a Location"
                raise PermanentSendError(f"webhook answered HTTP {exc.code} (a redirect{where}); redirects are"
                                         " not followed: set CONVEYOR_PROVIDER to the gateway's final URL") from None
            detail = exc.read(500).decode(errors="replace").strip()
            msg = f"webhook answered HTTP {exc.code}" + (f": {detail}" if detail else "")
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise PermanentSendError(msg) from None
            raise TransientSendError(msg) from None
        except TimeoutError:
            raise TransientSendError(f"webhook timed out after {self.timeout:g} s") from None
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransientSendError(f"webhook unreachable: {reason}") from None

    def delivered(self, idempotency_key: str) -> bool | None:
        url = f"{self.url}{'&' if '?' in self.url else '?'}idempotency_key={urllib.request.quote(idempotency_key)}"
        try:
            with _OPENER.open(url, timeout=self.timeout) as resp:
                if resp.status != 200:
                    return None
                answer = json.loads(resp.read(2000))
        except Exception:  # any failure (a 3xx included) only means "cannot tell": the caller resends
            return None
        # Only a JSON true means delivered: "false", "no" or 1 are not an answer we can trust.
        value = answer.get("delivered") if isinstance(answer, dict) else None
        return True if value is True else False if value is False else None

"""One HTTP call to a gateway, as every HTTP provider makes it: no redirects, bounded, classified.

urllib follows redirects by default and httpx does not; provider calls never do (a gateway must
not be able to send the engine to another URL), so every call goes through ``_OPENER``. The
answer is classified once: 2xx → ``Answer``; 3xx → permanent (naming the Location, masked);
429 → ``RateLimited`` for its ``Retry-After``; 408 and 5xx → transient; other 4xx → permanent;
timeouts and refused or dropped connections → transient.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from engine.errors import PermanentSendError, TransientSendError
from engine.outbox.errors import RateLimited
from storage.urls import mask_url

__all__ = ["ANSWER_LIMIT", "DEFAULT_RETRY_AFTER", "Answer", "call", "printable", "retry_after"]

#: The most of a gateway's answer read (and kept in an error message: ``printable`` bounds it further).
ANSWER_LIMIT = 8_000
#: Seconds to wait after a 429 that does not say how long.
DEFAULT_RETRY_AFTER = 1.0
#: The longest ``Retry-After`` honoured: a gateway asking for more is asked again after an hour.
MAX_RETRY_AFTER = 3_600.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is handed back as an ``HTTPError``: a provider call never goes to another URL."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


#: Provider calls go through this opener only: no redirects (urllib's default follows them).
_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def printable(text: str, limit: int = 300) -> str:
    """A gateway's words for an error message or a reference: one line, control characters blanked."""
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()[:limit]


def retry_after(value: str | None, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return default
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        seconds = when.timestamp() - time.time()
    if seconds != seconds:  # NaN
        return default
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def call(
    method: str,
    url: str,
    *,
    what: str,
    timeout: float,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    hint: str = "",
    describe: Any = None,
    body_retry_after: Any = None,
) -> Answer:
    """Make one request; return a 2xx ``Answer`` or raise the send error its outcome means.

    ``what`` names the gateway in messages ("Telegram", "Twilio"); ``hint`` is added to the redirect
    error (which setting to fix); ``describe(status, body) -> str`` words a refusal from the gateway's
    own answer (its error code and message), default the start of the body; ``body_retry_after(body)``
    reads the wait of a 429 without a ``Retry-After`` header from the body (Telegram's ``retry_after``).
    """
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            body = resp.read(ANSWER_LIMIT)
            if not 200 <= resp.status < 300:  # a 1xx or 3xx that reached us as a response
                raise PermanentSendError(f"{what} answered HTTP {resp.status}, not 2xx")
            return Answer(resp.status, body, resp.headers)
    except urllib.error.HTTPError as exc:
        code = exc.code
        if 300 <= code < 400:
            location = exc.headers.get("Location") if exc.headers else None
            where = f" to {mask_url(location)[:300]}" if location else " without a Location"
            raise PermanentSendError(
                f"{what} answered HTTP {code} (a redirect{where}); redirects are not"
                f" followed{': ' + hint if hint else ''}"
            ) from None
        try:
            body = exc.read(ANSWER_LIMIT)
        except OSError:
            body = b""
        detail = describe(code, body) if describe else printable(body.decode(errors="replace"))
        msg = f"{what} answered HTTP {code}" + (f": {detail}" if detail else "")
        if code == 429:
            header = exc.headers.get("Retry-After") if exc.headers else None
            wait = (
                retry_after(header)
                if header or body_retry_after is None
                else body_retry_after(body)
            )
            raise RateLimited(msg, wait) from None
        if 400 <= code < 500 and code != 408:
            raise PermanentSendError(msg) from None
        raise TransientSendError(msg) from None
    except TimeoutError:
        raise TransientSendError(f"{what} timed out after {timeout:g} s") from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransientSendError(f"{what} unreachable: {reason}") from None

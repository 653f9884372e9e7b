"""Signatures of webhook bodies, outbound and inbound alike: ``Conveyor-Signature: t=<unix>,v1=<hex>``.

``v1`` is ``HMAC-SHA256(secret, "<t>.<raw body>")``; a receiver recomputes it with
``hmac.compare_digest`` and refuses a ``t`` outside a 5-minute window (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["HEADER", "TOLERANCE_SECONDS", "sign", "verify"]

HEADER = "Conveyor-Signature"
TOLERANCE_SECONDS = 300


def _mac(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, t: int | None = None) -> str:
    """The header value for ``body`` sent at unix time ``t`` (default now)."""
    t = int(time.time()) if t is None else int(t)
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of ``now``."""
    if not header:
        return False
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = _mac(secret, t, body)
    return any(hmac.compare_digest(expected, v) for v in parts.get("v1", []))

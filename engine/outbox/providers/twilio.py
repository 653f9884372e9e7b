"""The SMS provider: Twilio's Programmable Messaging API (``Messages.json``), the gateway's message id kept.

https://www.twilio.com/docs/messaging/api/message-resource — ``POST /2010-04-01/Accounts/{sid}/Messages.json``
(form-encoded ``To``, ``From`` or ``MessagingServiceSid``, ``Body``, ``StatusCallback``; HTTP basic
auth with the account sid and auth token) answers ``201`` with the message's ``sid`` and ``status``;
an error answers ``{"code": 21211, "message": …}``; ``429`` (error 20429) means too many requests.
Twilio reports delivery later to ``StatusCallback`` (``MessageSid``, ``MessageStatus``): the HTTP API
passes that to ``engine.outbox.record_delivery``; ``verify_signature`` checks its ``X-Twilio-Signature``.

Twilio takes no idempotency key. To reconcile a message whose answer was lost (a crash, a timeout)
the provider lists the newest messages to the recipient (``GET Messages.json?To=…&From=…``) and
counts one with the same sender and body, created no earlier than the message was first recorded,
as the one we sent (see docs/guarantees.md for what that cannot tell apart).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import re
import urllib.parse
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from engine.errors import PermanentSendError, TransientSendError
from engine.outbox.providers.base import OutgoingMessage, Receipt
from engine.outbox.providers.http import call, printable

__all__ = ["DEFAULT_BASE_URL", "FAILED", "TwilioProvider", "delivery_state", "verify_signature"]

DEFAULT_BASE_URL = "https://api.twilio.com"
#: How many of the recipient's newest messages reconciliation looks through.
RECONCILE_PAGE = 20
#: Clock difference tolerated between us and Twilio when matching ``date_created``.
CLOCK_SLACK = timedelta(minutes=2)
#: Twilio message statuses that mean the client did not get it.
FAILED = frozenset({"failed", "undelivered", "canceled"})


def delivery_state(twilio_status: str) -> str | None:
    """Our message state for a Twilio ``MessageStatus`` (None: no news, e.g. ``queued`` or ``sent``)."""
    status = twilio_status.strip().lower()
    if status in ("delivered", "read"):
        return "delivered"
    if status in FAILED:
        return "failed"
    return None


def verify_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1 of the full URL followed by the sorted form pairs."""
    if not signature:
        return False
    data = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    expected = base64.b64encode(
        hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    ).decode()
    return hmac.compare_digest(expected, signature)


def _describe(_status: int, body: bytes) -> str:
    try:
        answer: Any = json.loads(body)
    except ValueError:
        return printable(body.decode(errors="replace"))
    if isinstance(answer, dict) and (answer.get("code") or answer.get("message")):
        return printable(f"error {answer.get('code')}: {answer.get('message') or ''}".strip())
    return printable(body.decode(errors="replace"))


def _e164(phone: str) -> str:
    """``+380 (50) 123-45-67`` → ``+380501234567``: Twilio wants E.164."""
    return ("+" if phone.strip().startswith("+") else "") + re.sub(r"\D", "", phone)


class TwilioProvider:
    """One Twilio account, one sender (a number or a messaging service)."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        sender: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        status_callback: str | None = None,
        timeout: float = 10.0,
    ):
        if not sender and not messaging_service_sid:
            raise ValueError("a Twilio channel needs 'from' (a number) or 'messaging_service_sid'")
        self._account = account_sid
        self._token = auth_token
        self._auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.sender = sender
        self.messaging_service_sid = messaging_service_sid
        self.base_url = base_url.rstrip("/")
        self.status_callback = status_callback
        self.timeout = timeout

    def __repr__(self) -> str:
        return (
            f"TwilioProvider(base_url={self.base_url!r}, sender={self.sender!r})"  # never the token
        )

    @property
    def _messages(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{urllib.parse.quote(self._account, safe='')}/Messages.json"

    def send(self, message: OutgoingMessage) -> Receipt:
        form = {"To": _e164(message.to), "Body": message.text}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        if self.sender:
            form["From"] = self.sender
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        answer = call(
            "POST",
            self._messages,
            what="Twilio",
            timeout=self.timeout,
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Authorization": self._auth,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            hint="set base_url of the sms channel to Twilio's own address",
            describe=_describe,
        )
        parsed = answer.json()
        sid = parsed.get("sid") if isinstance(parsed, dict) else None
        if not isinstance(sid, str) or not sid:
            # Accepted (2xx) without a sid: we cannot know which message it is; reconciliation decides.
            raise TransientSendError(f"Twilio answered HTTP {answer.status} without a message sid")
        status = str(parsed.get("status") or "")
        if status in FAILED:
            raise PermanentSendError(
                f"Twilio refused the message {sid}: {status}"
                f" ({printable(str(parsed.get('error_message') or parsed.get('error_code') or ''))})"
            )
        return Receipt(printable(sid, 64), delivered=delivery_state(status) == "delivered")

    def callback_valid(self, url: str, params: Mapping[str, str], signature: str | None) -> bool:
        """Whether a status callback to ``url`` (as Twilio called it, query included) really came from
        this account: for the HTTP API's route, which then calls ``engine.outbox.record_delivery``."""
        return verify_signature(self._token, url, params, signature)

    def delivered(self, idempotency_key: str) -> bool | None:
        return None  # Twilio knows no idempotency keys: ``reconcile`` needs the message itself

    def reconcile(self, message: OutgoingMessage) -> Receipt | bool | None:
        query = {"To": _e164(message.to), "PageSize": str(RECONCILE_PAGE)}
        if self.sender:
            query["From"] = self.sender
        try:
            answer = call(
                "GET",
                f"{self._messages}?{urllib.parse.urlencode(query)}",
                what="Twilio",
                timeout=self.timeout,
                headers={"Authorization": self._auth, "Accept": "application/json"},
            )
        except Exception:  # noqa: BLE001 - any failure only means "cannot tell": the message is sent again
            return None
        parsed = answer.json()
        listed = parsed.get("messages") if isinstance(parsed, dict) else None
        if not isinstance(listed, list):
            return None
        for item in listed:
            if not isinstance(item, dict) or item.get("body") != message.text:
                continue
            if self.sender and item.get("from") != self.sender:
                continue
            if message.created_at is not None:
                try:
                    created = email.utils.parsedate_to_datetime(str(item.get("date_created")))
                except (TypeError, ValueError):
                    continue
                if created < message.created_at - CLOCK_SLACK:
                    continue  # an earlier message with the same words, not this one
            status = str(item.get("status") or "")
            if status in FAILED:
                continue  # Twilio has it but the client did not get it: send again
            sid = item.get("sid")
            if isinstance(sid, str) and sid:
                return Receipt(printable(sid, 64), delivered=delivery_state(status) == "delivered")
        return False

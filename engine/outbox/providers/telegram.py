"""The Telegram provider: the Bot API's ``sendMessage``; its answer (``ok``, ``message_id``) is delivery.

https://core.telegram.org/bots/api#sendmessage — ``POST <base>/bot<token>/sendMessage`` with JSON
``{"chat_id", "text"}``; the answer is ``{"ok": true, "result": {"message_id": …}}`` or
``{"ok": false, "error_code", "description", "parameters": {"retry_after"}}``. The Bot API has no
idempotency key and no way to ask what a bot sent, so a message cut off by a crash between the call
and its record is sent again (at least once; see docs/guarantees.md).
"""

from __future__ import annotations

import json
from typing import Any

from engine.errors import PermanentSendError, TransientSendError
from engine.outbox.providers.base import OutgoingMessage, Receipt
from engine.outbox.providers.http import DEFAULT_RETRY_AFTER, call, printable, retry_after

DEFAULT_BASE_URL = "https://api.telegram.org"
#: The Bot API takes at most this many characters of text per message.
MAX_TEXT = 4096


def _describe(_status: int, body: bytes) -> str:
    try:
        answer: Any = json.loads(body)
    except ValueError:
        return printable(body.decode(errors="replace"))
    if isinstance(answer, dict) and answer.get("description"):
        return printable(str(answer["description"]))
    return printable(body.decode(errors="replace"))


def _retry_after(body: bytes) -> float:
    """``parameters.retry_after`` of a 429 answer (the Bot API's own way of saying how long)."""
    try:
        value = json.loads(body)["parameters"]["retry_after"]
    except (ValueError, KeyError, TypeError):
        return DEFAULT_RETRY_AFTER
    return retry_after(str(value))


class TelegramProvider:
    """Sends to a chat id (the deal's ``telegram_chat_id`` field) through one bot."""

    name = "telegram"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        parse_mode: str | None = None,
    ):
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.parse_mode = parse_mode

    def __repr__(self) -> str:
        return f"TelegramProvider(base_url={self.base_url!r})"  # never the token

    def send(self, message: OutgoingMessage) -> Receipt:
        if len(message.text) > MAX_TEXT:
            raise PermanentSendError(
                f"the text has {len(message.text)} characters; Telegram takes at most {MAX_TEXT}"
            )
        request: dict[str, Any] = {"chat_id": message.to, "text": message.text}
        if self.parse_mode:
            request["parse_mode"] = self.parse_mode
        body = json.dumps(request, ensure_ascii=False).encode()
        answer = call(
            "POST",
            f"{self.base_url}/bot{self._token}/sendMessage",
            what="Telegram",
            timeout=self.timeout,
            data=body,
            headers={"Content-Type": "application/json"},
            hint="set base_url of the telegram channel to the Bot API's own address",
            describe=_describe,
            body_retry_after=_retry_after,
        )
        parsed = answer.json()
        if not isinstance(parsed, dict) or parsed.get("ok") is not True:
            # A 200 that is not the Bot API's success: we cannot tell whether it was sent.
            raise TransientSendError(
                f"Telegram answered without ok=true: {printable(answer.body.decode(errors='replace'))}"
            )
        result = parsed.get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        if isinstance(message_id, bool) or not isinstance(message_id, int | str):
            raise TransientSendError("Telegram answered ok=true without a message_id")
        return Receipt(f"{printable(message.to, 60)}:{message_id}", delivered=True)

    def delivered(self, idempotency_key: str) -> bool | None:
        return None  # the Bot API cannot say what a bot sent

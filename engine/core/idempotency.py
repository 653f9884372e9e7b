"""Idempotency keys, as Stripe's: the same key with the same request gets the first answer.

A request first claims (caller, key) with the digest of its body: the database's unique key lets one
claim win, however many arrive at once. The winner runs and stores its answer; the others wait for it
and return it. The same key with another body is refused. Records are kept ``KEEP`` (48 h, at least
the 24 h callers are promised) and purged afterwards.

A claim is held by a lease of ``LEASE`` that the running request renews (``renew``, every third of
it). A request whose process died stops renewing: its claim lapses and the next request with the
same key and body takes it over and runs. What the dead request had committed stays (each request's
change is one transaction, so it either committed whole or left nothing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from engine.core.context import Context
from engine.core.deal_input import clean_text
from engine.errors import Conflict, InvalidChange
from storage import door_repositories as doors

__all__ = ["KEEP", "LEASE", "Idempotency", "Replay"]

KEEP = timedelta(hours=48)
#: How long a claim is its request's without renewal; the middleware renews it every third of this.
LEASE = timedelta(seconds=30)
#: How long a request waits for the first one with its key to finish before answering 409.
WAIT_SECONDS = 15.0
KEY_LIMIT = 200


@dataclass(frozen=True)
class Replay:
    status: int
    body: str


class Idempotency:
    def __init__(self, context: Context):
        self._context = context
        self._last_purge = 0.0
        #: How long ``begin`` waits for a live claim of the same request before answering 409.
        self.wait_seconds = WAIT_SECONDS

    def begin(self, scope: str, key: str, request_hash: str) -> Replay | None:
        """None: this request owns ``key`` now (run it, then ``finish`` or ``abandon``); else the first answer."""
        clean_text("Idempotency-Key", key, KEY_LIMIT, one_line=True)
        if not key.strip():
            raise InvalidChange("Idempotency-Key is empty")
        self._purge()
        deadline = time.monotonic() + self.wait_seconds
        while True:
            now = self._context.clock.now()
            try:
                with self._context.transaction() as s:
                    if doors.claim_idempotency_key(s, scope, key, request_hash, now, now + LEASE):
                        return None
                    row = doors.get_idempotency_record(s, scope, key)
                    if (
                        row is not None
                        and row.status == "pending"
                        and row.request_hash == request_hash
                        and doors.reclaim_idempotency_key(
                            s, scope, key, request_hash, now, now + LEASE, now - LEASE
                        )
                    ):
                        return None  # its request died: this one runs it
            except IntegrityError:  # a racing claim on a backend that reports it late
                row = None
            if row is not None:
                if row.request_hash != request_hash:
                    raise InvalidChange(
                        "this Idempotency-Key was used with a different request; use a new key"
                        " for a new request"
                    )
                if row.status == "done":
                    return Replay(int(row.response_status or 200), row.response_body or "")
            if time.monotonic() > deadline:
                raise Conflict(
                    "a request with this Idempotency-Key is still being processed; retry later"
                )
            time.sleep(0.05)

    def renew(self, scope: str, key: str) -> None:
        """The request holding ``key`` is still running: extend its lease."""
        with self._context.transaction() as s:
            doors.renew_idempotency_key(s, scope, key, self._context.clock.now() + LEASE)

    def finish(self, scope: str, key: str, status: int, body: str) -> None:
        with self._context.transaction() as s:
            doors.complete_idempotency_key(s, scope, key, status, body, self._context.clock.now())

    def abandon(self, scope: str, key: str) -> None:
        """The request failed before it could answer (not the caller's fault): the key may be used again."""
        with self._context.transaction() as s:
            doors.release_idempotency_key(s, scope, key)

    def _purge(self) -> None:
        if time.monotonic() - self._last_purge < 600:
            return
        self._last_purge = time.monotonic()
        with self._context.transaction() as s:
            doors.purge_idempotency_keys(s, self._context.clock.now() - KEEP)

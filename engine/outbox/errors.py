"""Errors of the outbox: an internal action that could not be applied, a gateway that asked us to wait."""

from __future__ import annotations

from engine.errors import ConveyorError, TransientSendError

__all__ = ["ActionFailed", "RateLimited"]


class ActionFailed(ConveyorError):
    """An action could not be applied. ``permanent`` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class RateLimited(TransientSendError):
    """The gateway (429 with ``Retry-After``) or our own bucket says: not before ``retry_after`` seconds.

    The message was not accepted; it is tried again after that wait, and the wait does not count as
    one of its attempts (nothing is wrong with the message).
    """

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = max(0.0, float(retry_after))

"""Errors of the outbox: an internal action that could not be applied."""

from __future__ import annotations

from engine.errors import ConveyorError

__all__ = ["ActionFailed"]


class ActionFailed(ConveyorError):
    """An action could not be applied. ``permanent`` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent

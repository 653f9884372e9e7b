"""Errors the engine raises to its callers (CLI, builder, tests).

Every message names the offending value and where it is, so a user can fix it without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.i18n import _


class ConveyorError(Exception):
    """Base of every error Conveyor reports to a user."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rule-set document, at a JSON path such as ``rules[3].conditions``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class RuleSetInvalid(ConveyorError):
    """A rule-set document failed validation; ``problems`` lists every error found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"rule set is invalid ({len(self.problems)} problem(s)):\n{lines}")


class GuardFailed(ConveyorError):
    """A move into a stage was refused because the stage's entry guard does not hold.

    The message speaks the owner's words (stage name, field labels); ``stage`` and ``missing`` keep
    the ids for programs.
    """

    def __init__(
        self,
        stage: str,
        missing: list[str],
        *,
        stage_name: str | None = None,
        labels: list[str] | None = None,
    ):
        self.stage = stage
        self.missing = list(missing)
        shown = labels if labels and len(labels) == len(self.missing) else self.missing
        super().__init__(
            _("Cannot move into stage '{stage}': fill in {fields} first.").format(
                stage=stage_name or stage, fields=", ".join(shown)
            )
        )


class TransitionNotAllowed(ConveyorError):
    """A manual stage move that the funnel's transitions do not allow."""


class NotFound(ConveyorError):
    """A deal, funnel, version, manager or task that does not exist."""


class Forbidden(ConveyorError):
    """The actor's role may not do this (``engine.core.access``); says nothing about the data."""


class Unauthenticated(ConveyorError):
    """No credentials, or credentials that do not verify (an unknown or revoked key, a bad signature)."""


class TooManyAttempts(Unauthenticated):
    """Too many failed sign-ins in a row: the account or address waits ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(ConveyorError):
    """A request that collides with another one (an idempotency key in use, a name taken)."""


class InvalidChange(ConveyorError):
    """A deal change whose content is wrong (unknown field, wrong type, unknown stage...)."""


class EngineLocked(ConveyorError):
    """Another engine process already runs on this SQLite database."""


class PermanentSendError(ConveyorError):
    """A provider refused a message for a reason that retrying will not fix (e.g. a bad phone number)."""


class TransientSendError(ConveyorError):
    """A provider failed in a way that may succeed later (timeout, 5xx)."""

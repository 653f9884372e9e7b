"""Conveyor's engine: rule sets, validation, evaluation, actions, the outbox and the service.

What is listed in ``__all__`` is the public API; everything else may change. Names are imported
lazily so that ``import engine.clock`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "Conveyor": "engine.core.conveyor",
    "VersionInfo": "engine.core.conveyor",
    "TickReport": "engine.core.conveyor",
    "RuleSet": "engine.document.ruleset",
    "Rule": "engine.document.ruleset",
    "Stage": "engine.document.ruleset",
    "FieldDef": "engine.document.ruleset",
    "RepeatPolicy": "engine.document.ruleset",
    "StageKind": "engine.document.ruleset",
    "validate_document": "engine.document.validate",
    "validate_text": "engine.document.validate",
    "rule_data": "engine.document.validate",
    "DealVariables": "engine.rules.variables",
    "variables_class": "engine.rules.variables",
    "DealActions": "engine.rules.actions",
    "DealState": "engine.rules.deal",
    "evaluate": "engine.rules.evaluators.reference",
    "trace": "engine.rules.evaluators.reference",
    "run_until_idle": "engine.outbox.dispatcher",
    "dispatch_internal": "engine.outbox.dispatcher",
    "dispatch_messages": "engine.outbox.dispatcher",
    "retry": "engine.outbox.dispatcher",
    "RetryPolicy": "engine.outbox.dispatcher",
    "Clock": "engine.clock",
    "SystemClock": "engine.clock",
    "VirtualClock": "engine.clock",
    "WebhookProvider": "engine.outbox.providers",
    "RecordingProvider": "engine.outbox.providers",
    "ConveyorError": "engine.errors",
    "RuleSetInvalid": "engine.errors",
    "GuardFailed": "engine.errors",
    "TransitionNotAllowed": "engine.errors",
    "InvalidChange": "engine.errors",
    "NotFound": "engine.errors",
    "Problem": "engine.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")

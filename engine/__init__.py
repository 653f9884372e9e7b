"""Conveyor's engine: rule sets, validation, evaluation, actions, the outbox and the service.

What is listed in ``__all__`` is the public API; everything else may change. Names are imported
lazily so that ``import engine.clock`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "Conveyor": "engine.conveyor",
    "VersionInfo": "engine.conveyor",
    "TickReport": "engine.conveyor",
    "RuleSet": "engine.ruleset",
    "Rule": "engine.ruleset",
    "Stage": "engine.ruleset",
    "FieldDef": "engine.ruleset",
    "RepeatPolicy": "engine.ruleset",
    "StageKind": "engine.ruleset",
    "validate_document": "engine.validate",
    "validate_text": "engine.validate",
    "rule_data": "engine.validate",
    "DealVariables": "engine.variables",
    "variables_class": "engine.variables",
    "DealActions": "engine.actions",
    "DealState": "engine.deal",
    "evaluate": "engine.evaluate",
    "trace": "engine.evaluate",
    "run_until_idle": "engine.dispatch",
    "dispatch_internal": "engine.dispatch",
    "dispatch_messages": "engine.dispatch",
    "retry": "engine.dispatch",
    "RetryPolicy": "engine.dispatch",
    "Clock": "engine.clock",
    "SystemClock": "engine.clock",
    "VirtualClock": "engine.clock",
    "WebhookProvider": "engine.providers",
    "RecordingProvider": "engine.providers",
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

"""The ``conveyor`` command line (click). Errors are reported as plain sentences, never as tracebacks.

Each module holds one family of commands; importing them registers them on ``main``.
"""

from __future__ import annotations

from engine.cli import doors, imports, operations, rulesets, serve, tools, users
from engine.cli.app import main

__all__ = ["main"]
_COMMANDS = (
    doors,
    imports,
    operations,
    rulesets,
    serve,
    tools,
    users,
)  # imported for their @main.command() registrations

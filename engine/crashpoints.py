"""Crash-point injection for the crash tests: kill this process with SIGKILL at a named point.

``CONVEYOR_CRASH_AT=<point>[:<n>]`` kills the process the n-th time (default: first) it reaches
``<point>``. Unset, ``crashpoint`` is one global lookup and a return: nothing to pay in production.
Points: ``after_evaluate_before_commit``, ``after_commit_before_dispatch``, ``before_provider_call``,
``during_provider_call``, ``during_internal_action``, ``before_group_commit`` (two or more grouped
write transactions decided, their one commit not yet issued).
"""

from __future__ import annotations

import os
import signal
import sys

POINTS = frozenset(
    {
        "after_evaluate_before_commit",
        "after_commit_before_dispatch",
        "before_provider_call",
        "during_provider_call",
        "during_internal_action",
        "before_group_commit",
    }
)


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    name, _, nth = value.partition(":")
    if name not in POINTS:
        raise ValueError(
            f"CONVEYOR_CRASH_AT={value!r}: unknown crash point (known: {', '.join(sorted(POINTS))})"
        )
    return name, int(nth or 1)


_TARGET = _parse(os.environ.get("CONVEYOR_CRASH_AT"))
_hits = 0


def crashpoint(name: str) -> None:
    """Die here, at once and without cleanup, if the environment asks for it."""
    if _TARGET is None or _TARGET[0] != name:
        return
    global _hits
    _hits += 1
    if _hits >= _TARGET[1]:
        # Say where we died (stderr is unbuffered) so a failing crash test can tell what happened.
        sys.stderr.write(f"conveyor: crash point {name} reached, SIGKILL\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

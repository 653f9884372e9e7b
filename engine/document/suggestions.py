"""\"Did you mean …\" suggestions for names that are close to a known one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["suggest"]


def suggest(word: Any, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""

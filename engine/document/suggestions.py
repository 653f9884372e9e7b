"""\"Did you mean …\" suggestions for names that are close to a known one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from engine.i18n import _

__all__ = ["suggest"]


def suggest(word: Any, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return _("; did you mean '{choice}'?").format(choice=close[0]) if close else ""

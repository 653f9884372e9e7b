"""What text may enter Conveyor, checked in one place for deal input and rule-set documents.

Every backend must store the text as given: a lone surrogate is not Unicode (SQLite's driver cannot
encode it), PostgreSQL refuses NUL, and the other C0 control characters are invisible. Names also
refuse bidirectional overrides (they reorder what the reader sees) and may not be invisible only.
"""

from __future__ import annotations

import re
import unicodedata

#: Allowed: tab, line feed and carriage return (line breaks); refused: every other C0 control
#: character (NUL included) and lone surrogates.
_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_BAD_ONE_LINE = re.compile(r"[\x00-\x1f\ud800-\udfff]")
#: Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069]")


def refusal(value: str, *, one_line: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text ("a lone surrogate (U+DFFF at character 3)"), or None."""
    bad = (_BAD_ONE_LINE if one_line else _BAD).search(value)
    if bad is None:
        return None
    char = bad.group()
    where = f"U+{ord(char):04X} at character {bad.start() + 1}"
    if "\ud800" <= char <= "\udfff":
        return f"is not valid Unicode text: a lone surrogate ({where})"
    if char in "\t\n\r":
        return f"contains a tab or line break ({where}); it must be one line"
    return (
        f"contains the control character {'NUL ' if char == chr(0) else ''}({where});"
        " only tab and line breaks are allowed"
    )


def name_refusal(value: str) -> str | None:
    """Why ``value`` cannot be a name or id shown to people: a bidi override, or nothing visible."""
    bidi = BIDI_CONTROLS.search(value)
    if bidi is not None:
        return (
            f"contains the bidirectional control U+{ord(bidi.group()):04X} at character {bidi.start() + 1},"
            " which reorders what readers see"
        )
    if value and not any(_visible(c) for c in value):
        shown = " ".join(f"U+{ord(c):04X}" for c in value[:5]) + (" …" if len(value) > 5 else "")
        return f"has no visible character (only {shown})"
    return None


def _visible(char: str) -> bool:
    # Separators (spaces), format characters (zero-width space, joiners) and controls show nothing.
    return (
        unicodedata.category(char)[0] not in ("Z", "C") and char not in "\u115f\u1160\u3164\uffa0"
    )


def storable(text: str, limit: int | None = None) -> str:
    """``text`` that every backend stores and every stream encodes: lone surrogates and C0 controls escaped."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if limit is None or len(text) <= limit else text[:limit] + "…"

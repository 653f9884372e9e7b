"""Regular expressions in ``matches_regex``: valid under RE2, small enough for its DFA, read alike by Python's ``re``."""

from __future__ import annotations

import re2

from engine.document.limits import MAX_REGEX_LENGTH
from engine.document.regex import MAX_PROGRAM, compile_pattern, program_size

__all__ = ["pattern_problems", "regex_differences"]

#: RE2's shorthand classes and word boundaries are ASCII-only; Python's ``re`` (what plain
#: business-rules runs) makes them Unicode-aware. "^\w+$" matches "Олена" in one and not the other,
#: so these are refused with the Unicode spelling that means what the author most likely wanted.
_ASCII_SHORTHANDS = {
    "w": r"[\p{L}\p{Nd}_]",
    "W": r"[^\p{L}\p{Nd}_]",
    "d": r"\p{Nd}",
    "D": r"\P{Nd}",
    "s": r"[\p{Z}\t\n\r\f\v]",
    "S": r"[^\p{Z}\t\n\r\f\v]",
    "b": r"(^|[^\p{L}\p{Nd}_]) … ([^\p{L}\p{Nd}_]|$) around the word",
    "B": r"an explicit [\p{L}\p{Nd}_] on both sides",
}


def _re2_reason(exc: Exception) -> str:
    """RE2's reason for refusing a pattern as plain text (it arrives as bytes), with a hint where useful."""
    raw = exc.args[0] if exc.args else str(exc)
    reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if reason.startswith("invalid perl operator") or (
        reason.startswith("invalid escape sequence") and reason[-1:].isdigit()
    ):
        reason += " (lookaround and backreferences are not supported)"
    return reason


def regex_differences(pattern: str) -> list[str]:
    """Why ``pattern`` would match differently under RE2 than under Python's ``re`` (empty: it would not).

    Walks the pattern escape by escape, so ``\\\\w`` (a literal backslash, then ``w``) is not mistaken
    for ``\\w``, and text quoted with ``\\Q…\\E`` is skipped.
    """
    found: list[str] = []
    i, n = 0, len(pattern)
    in_class, class_first = False, -1
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt == "Q":  # RE2 quotes literally up to \E
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            if nxt in _ASCII_SHORTHANDS:
                what = "a word boundary" if nxt in "bB" else "a shorthand class"
                found.append(
                    f"\\{nxt} is {what} that RE2 limits to ASCII while Python's re does not (so"
                    f" Cyrillic letters, other digits or non-ASCII spaces would match differently);"
                    f" write {_ASCII_SHORTHANDS[nxt]} instead"
                )
            i += 2
            continue
        if in_class:
            if c == "]" and i > class_first:
                in_class = False
            elif c == "[" and pattern[i + 1 : i + 2] in (":", ".", "="):
                found.append(
                    f"'[{pattern[i + 1]}' inside a character class is a POSIX class in RE2 (ASCII-only)"
                    " but literal characters in Python's re; write \\p{L}, \\p{Nd}, … or escape the '['"
                )
                i += 2
                continue
        elif c == "[":
            in_class = True
            class_first = (
                i + 2 if pattern[i + 1 : i + 2] == "^" else i + 1
            )  # a ']' right here is literal
        i += 1
    return found


def pattern_problems(pattern: str) -> list[str]:
    """Why ``pattern`` is refused (empty: it is accepted)."""
    if len(pattern) > MAX_REGEX_LENGTH:
        return [f"pattern is {len(pattern)} characters; the limit is {MAX_REGEX_LENGTH}"]
    try:
        # Evaluation's own options: a pattern accepted here runs there within the same memory.
        compiled = compile_pattern(pattern)
    except re2.error as exc:
        return [f"pattern {pattern!r} is not a valid regular expression: {_re2_reason(exc)}"]
    size = program_size(compiled)
    if size > MAX_PROGRAM:
        # RE2's DFA would not start within its memory: every match would run the slow NFA.
        return [
            f"pattern {pattern!r} is too large for RE2 to match quickly ({size:,} instructions; the"
            f" limit is {MAX_PROGRAM:,}): use a smaller count in {{m,n}} repetitions, or + and *"
        ]
    return [f"pattern {pattern!r}: {difference}" for difference in regex_differences(pattern)]

"""Text for the operator's terminal: every value the CLI prints from the database goes through ``printable``.

Deal keys, titles, rule ids and error texts come from people and gateways; an escape sequence in
one (``\\x1b]…``) must not reach the terminal as one. Control characters are shown escaped
(``\\x1b``, ``\\n``), as are the invisible bidirectional overrides that reorder what a line shows.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 and C1 controls, DEL, bidi embeddings/overrides/isolates and marks, line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """``value`` as one line of plain text: control characters escaped (``\\x1b`` shows as ``\\x1b``)."""
    return _UNSAFE.sub(_escape, "" if value is None else str(value))

"""Reading a document: JSON text (strict: no NaN, no duplicate keys, bounded size and integers) and
the values anywhere in it that no backend stores alike, each refused with its JSON path."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.document.limits import MAX_DOCUMENT_BYTES, MAX_INT_DIGITS
from engine.errors import Problem, RuleSetInvalid
from engine.text import refusal, storable

__all__ = ["json_path", "nesting_depth", "parse_json", "read_document", "value_problems"]


def json_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _NonStandardConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # Python's json reads NaN/Infinity, but other JSON readers (and exports) would choke on them.
    raise _NonStandardConstant(name)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys silently: a second "value" would hide the first.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            near = ", ".join(
                f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)[:40]}" for k, v in pairs[:3]
            )
            raise _DuplicateKey(
                f"key '{key}' appears twice in one object ({{{near}{', …' if len(pairs) > 3 else ''}}})"
            )
        out[key] = value
    return out


def parse_json(text: str | bytes, source: str = "document") -> Any:
    """Parse JSON, reporting syntax errors with line and column."""
    if isinstance(text, bytes):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise RuleSetInvalid(
                [Problem("", f"{source} is {len(text)} bytes; the limit is {MAX_DOCUMENT_BYTES}")]
            )
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RuleSetInvalid(
                [Problem("", f"{source} is not UTF-8 text ({exc.reason} at byte {exc.start})")]
            ) from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise RuleSetInvalid(
            [Problem("", f"{source} is larger than the limit of {MAX_DOCUMENT_BYTES} bytes")]
        )
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
            parse_int=_parse_int,
        )
    except _NonStandardConstant as exc:
        raise RuleSetInvalid(
            [
                Problem(
                    "",
                    f"{source} is not valid JSON: {exc} is not a JSON value (write a number or null)",
                )
            ]
        ) from None
    except _DuplicateKey as exc:
        raise RuleSetInvalid([Problem("", f"{source}: {exc}")]) from None
    except json.JSONDecodeError as exc:
        raise RuleSetInvalid(
            [
                Problem(
                    "",
                    f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                )
            ]
        ) from None
    except RecursionError:
        raise RuleSetInvalid([Problem("", f"{source} is nested too deeply to read")]) from None
    except (
        ValueError
    ) as exc:  # anything else Python's json refuses: still one sentence, no traceback
        raise RuleSetInvalid(
            [Problem("", f"{source} is not valid JSON: {storable(str(exc), 200)}")]
        ) from None


def read_document(path: str | Path, source: str | None = None) -> Any:
    """Parse the rule-set file at ``path``, reading at most ``MAX_DOCUMENT_BYTES`` + 1 bytes of it.

    A larger file, or something that is not a regular file (a folder, a pipe that would block), is
    refused without reading it. ``OSError`` for a file that cannot be opened.
    """
    source = source or str(path)
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise RuleSetInvalid([Problem("", f"{source} is not a regular file")])
    if info.st_size > MAX_DOCUMENT_BYTES:
        raise RuleSetInvalid(
            [Problem("", f"{source} is {info.st_size} bytes; the limit is {MAX_DOCUMENT_BYTES}")]
        )
    with open(path, "rb") as fh:
        return parse_json(fh.read(MAX_DOCUMENT_BYTES + 1), source)


class _HugeInt:
    """An integer literal too long to read, kept in its place so the problem gets a JSON path."""

    def __init__(self, digits: int):
        self.digits = digits


def _parse_int(literal: str) -> int | _HugeInt:
    digits = len(literal) - literal.startswith("-")
    return _HugeInt(digits) if digits > MAX_INT_DIGITS else int(literal)


def nesting_depth(value: Any, limit: int) -> int:
    """Nesting depth of JSON containers, stopping early past ``limit``."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, d = stack.pop()
        if d > limit:
            return d
        if isinstance(item, dict):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in item)
    return deepest


def value_problems(value: Any) -> list[Problem]:
    """Every text, key and number in ``value`` that cannot be stored and read back alike, with its path.

    Text: no lone surrogates, NUL or other C0 control characters (tab and line breaks are fine).
    Numbers: finite, and integers of at most ``MAX_INT_DIGITS`` digits.
    """
    found: list[tuple[str, Problem]] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    huge = 10**MAX_INT_DIGITS

    def add(loc: tuple[Any, ...], message: str) -> None:
        path = json_path(loc)
        found.append((path, Problem(path, message)))

    while stack:
        item, loc = stack.pop()
        if isinstance(item, str):
            reason = refusal(item)
            if reason is not None:
                add(loc, f"text {reason}")
        elif isinstance(item, _HugeInt):
            add(
                loc,
                f"a number with {item.digits} digits is too large (at most {MAX_INT_DIGITS} digits)",
            )
        elif isinstance(item, int) and not isinstance(item, bool) and not -huge < item < huge:
            add(
                loc,
                f"a number with more than {MAX_INT_DIGITS} digits is too large (at most {MAX_INT_DIGITS} digits)",
            )
        elif isinstance(item, float) and (item != item or item in (float("inf"), float("-inf"))):
            add(loc, "not a finite number (NaN and Infinity are not JSON)")
        elif isinstance(item, dict):
            for k, v in item.items():
                reason = refusal(k) if isinstance(k, str) else None
                key = storable(k) if reason is not None else k
                if reason is not None:
                    add((*loc, key), f"key {reason}")
                stack.append((v, (*loc, key)))
        elif isinstance(item, list):
            stack.extend((v, (*loc, i)) for i, v in enumerate(item))
    return [problem for _path_text, problem in sorted(found, key=lambda pair: pair[0])]

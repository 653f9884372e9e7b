"""What an import file holds: CSV text, its header, and the mapping of its columns onto deal fields.

Read with the standard library's ``csv``: UTF-8 (a BOM, as spreadsheets write it, is dropped), the
delimiter given or sniffed (comma, semicolon, tab, bar). Each record keeps the line it starts on, so
a problem names the line a person sees in an editor. Cells are text; ``from_text`` turns a numeric or
true/false cell into the value ``engine.core.deal_input`` checks, the same check an API value passes.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from engine.document.ruleset import FieldType
from engine.errors import InvalidChange
from engine.i18n import _

__all__ = [
    "IGNORE",
    "CsvTable",
    "from_text",
    "parse_mapping",
    "read_csv",
]

#: The mapping target that leaves a column out of the import (``--map "Notes=-"``).
IGNORE = "-"
DELIMITERS = ",;\t|"
#: Text a true/false cell may hold (lower case), in English and Ukrainian.
TRUE = frozenset({"true", "yes", "y", "1", "t", "так", "т", "+"})
FALSE = frozenset({"false", "no", "n", "0", "f", "ні", "н", "-"})


@dataclass(frozen=True)
class CsvTable:
    """A CSV file's header and its records, each with the line it starts on (the header is line 1)."""

    header: list[str]
    header_line: int
    rows: list[tuple[int, list[str]]]
    delimiter: str


def read_csv(data: bytes, *, delimiter: str | None = None, name: str = "file") -> CsvTable:
    """The file's header and records; InvalidChange naming the line when it is not CSV text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidChange(
            _(
                "{name} is not UTF-8 text: line {line} has the byte 0x{byte:02x}; save it as"
                ' UTF-8 ("CSV UTF-8" in a spreadsheet)'
            ).format(name=name, line=line, byte=data[exc.start])
        ) from None
    if delimiter is None:
        delimiter = _sniff(text)
    elif len(delimiter) != 1 or delimiter in '"\r\n':
        raise InvalidChange(
            _(
                "the delimiter must be one character (not a quote or line break), got {value}"
            ).format(value=repr(delimiter))
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    before = 0
    try:
        for cells in reader:
            start, before = before + 1, reader.line_num
            if not "".join(cells).strip():  # no cell holds more than blanks (one C call a row)
                continue
            if header is None:
                header, header_line = [c.strip() for c in cells], start
            else:
                rows.append((start, cells))
    except csv.Error as exc:
        raise InvalidChange(
            _("{name}, line {line}: not readable as CSV ({error})").format(
                name=name, line=before + 1, error=exc
            )
        ) from None
    if header is None:
        raise InvalidChange(_("{name} is empty: it has no header line").format(name=name))
    header = [h or _("column {number}").format(number=i + 1) for i, h in enumerate(header)]
    seen: set[str] = set()
    for h in header:
        if h in seen:
            raise InvalidChange(
                _("{name}: the header names column '{column}' twice").format(name=name, column=h)
            )
        seen.add(h)
    return CsvTable(header, header_line, rows, delimiter)


def _sniff(text: str) -> str:
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:  # one column, or nothing to tell by: the header line decides
        first = sample.split("\n", 1)[0]
        counts = {d: first.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def parse_mapping(text: str) -> dict[str, str]:
    """``"Назва=title,Телефон=phone"``, one ``column=field`` a line, or a JSON object: column → field."""
    text = text.strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidChange(
                _("the column mapping is not valid JSON: {error}").format(error=exc)
            ) from None
        if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
        ):
            raise InvalidChange(
                _("the column mapping must be an object of column names and field names")
            )
        return {k.strip(): v.strip() for k, v in loaded.items()}
    out: dict[str, str] = {}
    for part in text.replace("\n", ",").split(","):
        if not part.strip():
            continue
        column, sep, field = part.partition("=")
        if not sep or not column.strip():
            raise InvalidChange(
                _("the column mapping entry {entry} is not COLUMN=FIELD").format(
                    entry=repr(part.strip())
                )
            )
        out[column.strip()] = field.strip()
    return out


def from_text(kind: FieldType | str, text: str) -> Any:
    """A cell as the value its field takes: numbers and true/false parsed, empty as None, text as is.

    A cell that does not parse is returned unchanged, so the field's own check refuses it in its
    usual words ("field 'budget' needs a number, got 'a lot'").
    """
    value = text.strip()
    if not value:
        return None
    if kind in (FieldType.NUMERIC, "amount"):
        number = value.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
        if "," in number:  # 1200,50 (a decimal comma) or 1,200.50 (thousands)
            number = number.replace(",", "") if "." in number else number.replace(",", ".")
        try:
            return float(number) if number.isascii() else value
        except ValueError:
            return value
    if kind is FieldType.BOOLEAN:
        low = value.lower()
        return True if low in TRUE else False if low in FALSE else value
    return text

"""User text on the owner pages: escaped for agraph titles, trimmed for the canvas, label boxes per
language, widget keys that follow labels, and where a problem's JSON path points in the rule editor."""

from __future__ import annotations

import html
import json
import re
import zlib
from collections.abc import Iterable
from typing import Any

import streamlit as st

from engine.document.labels import label_texts
from engine.errors import Problem
from engine.i18n import _

__all__ = [
    "PATH_INDEX",
    "canvas_label",
    "describe_path",
    "esc",
    "label_input",
    "labels_key",
    "problems_under",
    "row_number",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def esc(text: Any) -> str:
    """User text for an agraph node title.

    streamlit-agraph parses every title as HTML (``div.innerHTML = title``, used by its double-click
    handler), so markup in a stage name would run inside the component's iframe. vis-network then
    shows the same string in the hover tooltip as plain text (``innerText``), so only ``<``, ``>``
    and ``&`` are escaped — quotes are harmless outside attributes and stay readable.
    """
    return html.escape(str(text), quote=False)


def canvas_label(text: Any, limit: int = 34) -> str:
    """A node label: vis draws it on the canvas as plain text, so only trim and drop control chars."""
    text = _CONTROL.sub(" ", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def labels_key(labels: Iterable[Any]) -> str:
    """A short hash of a widget's option labels, for its key.

    Streamlit keeps a selectbox's choice as the *formatted* option; when a label changes (a stage
    renamed) the old choice no longer maps back. A key that changes with the labels starts a fresh
    widget from the document instead.
    """
    return f"{zlib.crc32(json.dumps(list(labels), ensure_ascii=False, default=str).encode()):08x}"


def label_input(title: str, value: Any, key: str, where: Any = None) -> Any:
    """A text box for a label; a label given per language gets one box per language and stays so."""
    where = where or st
    texts = label_texts(value)
    if texts is not None:
        return {
            lang: where.text_input(f"{title} ({lang})", value=text, key=f"{key}:{lang}")
            for lang, text in texts.items()
        }
    return where.text_input(title, value="" if value is None else str(value), key=key)


#: The list indexes in a JSON path (``conditions.all[1].any[0]`` → 1, 0).
PATH_INDEX = re.compile(r"\[(\d+)\]")


def row_number(path: str) -> str:
    """``conditions.all[1].any[0]`` → ``2.1`` (1-based, the numbering shown next to each row)."""
    return ".".join(str(int(i) + 1) for i in PATH_INDEX.findall(path))


def describe_path(path: str, rule_prefix: str) -> str:
    """Where in the rule editor a JSON path points: ``condition row 2.1 — operator``."""
    rest = path[len(rule_prefix) :].lstrip(".")
    if rest.startswith("conditions"):
        cond = rest[len("conditions") :]
        num = row_number(cond)
        leaf = cond.rsplit(".", 1)[-1] if "." in cond and not cond.endswith("]") else ""
        where = _("condition row {number}").format(number=num) if num else _("conditions")
        return f"{where} — {leaf}" if leaf in ("name", "operator", "value") else where
    if rest.startswith("actions"):
        m = PATH_INDEX.search(rest)
        tail = rest.split(".params.", 1)[1] if ".params." in rest else ""
        where = _("action {number}").format(number=int(m.group(1)) + 1) if m else _("actions")
        return f"{where} — {tail}" if tail else where
    return rest or _("rule")


def problems_under(problems: list[Problem], prefix: str) -> list[Problem]:
    """The problems at ``prefix`` or inside it (a rule's condition row, one of its actions)."""
    return [
        p
        for p in problems
        if p.path == prefix or p.path.startswith(prefix + ".") or p.path.startswith(prefix + "[")
    ]

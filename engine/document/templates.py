"""Funnel templates: a new funnel starts from a working document instead of a blank JSON.

The templates are ordinary rule-set documents shipped in ``sample_rules/``: the TechFlow B2B funnel
(``sample_rules/techflow.json``, which starts the "Project work" funnel, its companion), a short
e-commerce funnel and an empty one (``sample_rules/templates/``). ``instantiate`` gives a template's
document under the owner's funnel id and name; the builder and ``conveyor init --template`` save it
(its companions first, when they are not stored yet) through ``Conveyor.save_ruleset``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from engine.document.limits import IDENT
from engine.errors import ConveyorError
from engine.i18n import N_
from engine.paths import SAMPLE_RULES

__all__ = ["TEMPLATES", "Template", "TemplateUnknown", "instantiate", "template"]


class TemplateUnknown(ConveyorError):
    """No template has that name."""


@dataclass(frozen=True)
class Template:
    name: str  # what ``--template`` and the builder call it
    title: str  # marked for translation; shown with _()
    path: Path
    companions: tuple[Path, ...] = ()  # funnels its rules start (start_process), saved first

    def document(self) -> dict[str, Any]:
        return copy.deepcopy(_read(self.path))

    def companion_documents(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(_read(p)) for p in self.companions]


TEMPLATES: tuple[Template, ...] = (
    Template(
        "techflow",
        N_("TechFlow B2B sales (qualification, proposal, contract, payment)"),
        SAMPLE_RULES / "techflow.json",
        (SAMPLE_RULES / "project_work.json",),
    ),
    Template(
        "ecommerce",
        N_("Online shop orders (paid, shipped, delivered)"),
        SAMPLE_RULES / "templates" / "ecommerce.json",
    ),
    Template(
        "empty", N_("Empty funnel (New → Won / Lost)"), SAMPLE_RULES / "templates" / "empty.json"
    ),
)


@cache
def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def template(name: str) -> Template:
    for t in TEMPLATES:
        if t.name == name:
            return t
    raise TemplateUnknown(
        f"template '{name}' does not exist; choose one of: {', '.join(t.name for t in TEMPLATES)}"
    )


def instantiate(name: str, funnel: str | None = None, title: str | None = None) -> dict[str, Any]:
    """The template's document, as funnel ``funnel`` named ``title`` (the template's own by default)."""
    doc = template(name).document()
    if funnel is not None:
        if not IDENT.match(funnel):
            raise ConveyorError(
                f"funnel id '{funnel}' is not valid: use lowercase letters, digits and _, "
                "starting with a letter"
            )
        doc["funnel"] = funnel
    if title is not None and title.strip():
        doc["name"] = title.strip()
    return doc

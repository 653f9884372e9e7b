"""Funnel templates: every template is a valid rule set (with the funnels it starts), and a template
is handed out under the owner's funnel id and name."""

from __future__ import annotations

import pytest

from engine.document.templates import TEMPLATES, Template, TemplateUnknown, instantiate
from engine.document.validate import validate_document
from engine.errors import ConveyorError


@pytest.mark.parametrize("tpl", TEMPLATES, ids=[t.name for t in TEMPLATES])
def test_every_template_validates_with_its_companions(tpl: Template) -> None:
    doc = tpl.document()
    known = {doc["funnel"], *(d["funnel"] for d in tpl.companion_documents())}
    rs = validate_document(doc, known_funnels=known)
    assert rs.stages and any(s.kind.value == "won" for s in rs.stages)
    for companion in tpl.companion_documents():
        validate_document(companion, known_funnels=known)


def test_the_three_templates_an_owner_is_offered() -> None:
    assert [t.name for t in TEMPLATES] == ["techflow", "ecommerce", "empty"]
    assert instantiate("empty")["rules"] == []
    assert len(instantiate("ecommerce")["rules"]) >= 5


def test_a_template_takes_the_owners_id_and_name_and_leaves_the_template_as_it_was() -> None:
    doc = instantiate("ecommerce", "my_shop", "  Мій магазин ")
    assert (doc["funnel"], doc["name"]) == ("my_shop", "Мій магазин")
    doc["stages"].clear()
    assert instantiate("ecommerce")["funnel"] == "shop" and instantiate("ecommerce")["stages"]


def test_an_unknown_template_or_a_bad_id_is_refused_with_its_name() -> None:
    with pytest.raises(
        TemplateUnknown,
        match="template 'crm' does not exist; choose one of: techflow, ecommerce, empty",
    ):
        instantiate("crm")
    with pytest.raises(ConveyorError, match="funnel id 'My shop' is not valid"):
        instantiate("empty", "My shop")

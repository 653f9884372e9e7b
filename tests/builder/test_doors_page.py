"""The read-only Hooks & forms page: the hook call log and each form's HTML snippet."""

from __future__ import annotations

import json
import time

from streamlit.testing.v1 import AppTest

from engine.core.conveyor import Conveyor
from engine.core.hooks import sign
from engine.errors import Unauthenticated

PAGE = "builder/views/doors.py"


def _app() -> AppTest:
    return AppTest.from_string(
        "from builder.views import doors\ndoors.render()\n", default_timeout=60
    )


def test_the_page_lists_hook_calls_and_shows_a_form_snippet(demo_db: Conveyor, monkeypatch) -> None:
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", "builder-test-key")
    _info, secret = demo_db.hooks.create("bank")
    body = json.dumps({"id": "evt-9", "deal": "NO-SUCH", "event": "payment_received"}).encode()
    try:
        demo_db.hooks.receive("bank", body, sign("wrong", int(time.time()), body))
    except Unauthenticated:
        pass
    token = demo_db.forms.create("techflow").token
    at = _app().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["hook"]) == ["bank"] and list(table["outcome"]) == ["refused"]
    assert any(token in c.value and 'name="website_url"' in c.value for c in at.code)
    assert secret not in str([c.value for c in at.code]) + table.to_string()


def test_the_form_snippet_speaks_the_funnels_client_language(demo_db: Conveyor) -> None:
    from builder.views.doors import form_language, snippet

    rs = demo_db.ruleset("techflow")
    assert rs.language == "uk" and form_language(rs) == "uk"  # its clients read Ukrainian
    uk = snippet("techflow", "TOK", ["title", "phone", "tax_id"], rs, "uk")
    assert '<label>Контрагент: код ЄДРПОУ <input name="tax_id"></label>' in uk
    en = snippet("techflow", "TOK", ["title", "phone", "tax_id"], rs, "en")
    assert '<label>Counterparty: tax id (ЄДРПОУ) <input name="tax_id"></label>' in en
    assert '<label>Your name <input name="title"></label>' in en
    assert '<button type="submit">Send</button>' in en
    assert form_language(None) == "en"  # no funnel to ask: the reader's language (the suite's)

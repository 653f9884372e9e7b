"""Text entering through Conveyor's public methods: refused with the field named, nothing saved.

Lone surrogates (SQLite's driver cannot encode them), NUL (PostgreSQL refuses it) and the other C0
control characters are refused on both backends alike, as is text beyond the documented limits;
the simulator reports such an event as an error line and goes on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from engine.core.conveyor import Conveyor
from engine.errors import InvalidChange
from storage import repositories as repo
from tests.conftest import ROOT
from tests.support.sessions import db_session

PHONE = "+380501234567"
MAX_TEXT = 10_000  # the limit docs/architecture.md documents for custom text fields and notes
FUNNEL: dict[str, Any] = {
    "format": "conveyor.ruleset/1",
    "funnel": "shop",
    "name": "Shop",
    "fields": [
        {"name": "notes", "label": "Notes", "type": "text"},
        {"name": "size", "type": "select", "options": ["S", "M"]},
    ],
    "stages": [{"id": "start", "name": "Start"}, {"id": "next", "name": "Next"}],
    "rules": [
        {
            "id": "hello",
            "name": "hello",
            "conditions": {"all": [{"name": "stage", "operator": "equal_to", "value": "start"}]},
            "actions": [{"name": "send_sms", "params": {"text": "Hi {title}: {notes}"}}],
        }
    ],
}


@pytest.fixture
def shop(backend: str, clock: Any) -> Iterator[Conveyor]:
    """Conveyor on the test's backend with the shop funnel and one manager."""
    c = Conveyor(backend, clock=clock)
    c.save_ruleset(FUNNEL)
    c.add_manager("Olena", "+380501110001")
    yield c
    c.close()


def _nothing_saved(c: Conveyor) -> None:
    with db_session(c) as s:
        assert [d.key for d in repo.list_deals(s)] == ["existing"]
        assert [m.name for m in repo.list_managers(s)] == ["Olena"]


BAD = [
    pytest.param(
        "x\udfffy",
        "is not valid Unicode text: a lone surrogate \\(U\\+DFFF at character 2\\)",
        id="lone-surrogate",
    ),
    pytest.param(
        "x\x00y", "contains the control character NUL \\(U\\+0000 at character 2\\)", id="nul"
    ),
    pytest.param(
        "bell\x07", "contains the control character \\(U\\+0007 at character 5\\)", id="bell"
    ),
    pytest.param(
        "esc\x1b[31m", "contains the control character \\(U\\+001B at character 4\\)", id="escape"
    ),
]


#: Every public method a text enters through, and how its refusal names the value.
DOORS = [
    (
        "field 'notes'",
        lambda c, v: c.create_deal("shop", key="k", fields={"phone": PHONE, "notes": v}),
    ),
    ("field 'title'", lambda c, v: c.create_deal("shop", key="k", title=v)),
    ("field 'phone'", lambda c, v: c.create_deal("shop", key="k", fields={"phone": v})),
    ("field 'email'", lambda c, v: c.create_deal("shop", key="k", fields={"email": v})),
    ("deal key", lambda c, v: c.create_deal("shop", key=v)),
    ("stage", lambda c, v: c.create_deal("shop", key="k", stage=v)),
    ("manager", lambda c, v: c.create_deal("shop", key="k", manager=v)),
    ("funnel", lambda c, v: c.create_deal(v, key="k")),
    ("actor", lambda c, v: c.create_deal("shop", key="k", actor=v)),
    ("a field name", lambda c, v: c.create_deal("shop", key="k", fields={v: "1"})),
    ("manager name", lambda c, v: c.add_manager(v)),
    ("manager phone", lambda c, v: c.add_manager("Petro", v)),
    ("field 'notes'", lambda c, v: c.update_deal(c.deal_id("existing"), {"notes": v})),
    ("activity note", lambda c, v: c.record_activity(c.deal_id("existing"), "call", v)),
    ("activity kind", lambda c, v: c.record_activity(c.deal_id("existing"), v, "")),
    ("stage", lambda c, v: c.move_deal(c.deal_id("existing"), v)),
    ("actor", lambda c, v: c.update_deal(c.deal_id("existing"), {"notes": "fine"}, actor=v)),
    ("version comment", lambda c, v: c.save_ruleset(FUNNEL, comment=v)),
    ("deal key", lambda c, v: c.deal_id(v)),
    ("funnel", lambda c, v: c.ruleset(v)),
]


@pytest.mark.parametrize(("bad", "reason"), BAD)
def test_deal_text_that_is_not_storable_is_refused_naming_the_field(shop, bad, reason):
    shop.create_deal(
        "shop", key="existing", title="Existing", fields={"phone": PHONE, "notes": "fine"}
    )
    for where, call in DOORS:
        with pytest.raises(InvalidChange, match=f"^{where} {reason}"):
            call(shop, bad)
    _nothing_saved(shop)
    assert shop.deal(shop.deal_id("existing")).fields["notes"] == "fine"
    assert [v.version for v in shop.versions("shop")] == [1]


def test_deal_text_with_lone_surrogate_is_refused_naming_the_field(shop):
    with pytest.raises(
        InvalidChange, match=r"^field 'notes' is not valid Unicode text: a lone surrogate"
    ):
        shop.create_deal("shop", key="bad", fields={"phone": PHONE, "notes": "\udfff"})
    with db_session(shop) as s:
        assert repo.list_deals(s) == []


def test_one_line_values_refuse_tabs_and_line_breaks_but_text_fields_keep_them(shop):
    deal = shop.create_deal(
        "shop",
        key="ok",
        title="Two\tcolumns\r\nand lines",
        fields={"phone": PHONE, "notes": "line one\nline two\tand a tab"},
    )
    state = shop.deal(deal)
    assert (state.title, state.fields["notes"]) == (
        "Two\tcolumns\r\nand lines",
        "line one\nline two\tand a tab",
    )
    for call, where in [
        (lambda: shop.create_deal("shop", key="a\nb"), "deal key"),
        (lambda: shop.add_manager("Petro\tP"), "manager name"),
        (
            lambda: shop.create_deal("shop", key="p", fields={"phone": "+38050\n1234567"}),
            "field 'phone'",
        ),
    ]:
        with pytest.raises(
            InvalidChange, match=f"^{where} contains a tab or line break .*; it must be one line"
        ):
            call()


def test_custom_text_longer_than_the_documented_limit_is_refused(shop):
    shop.create_deal("shop", key="fits", fields={"notes": "n" * MAX_TEXT})
    huge = "n" * (10 * 1024 * 1024)  # 10 MB: it would have become the SMS text
    with pytest.raises(
        InvalidChange,
        match=rf"^field 'notes' is {len(huge)} characters long; the limit is {MAX_TEXT}$",
    ):
        shop.create_deal("shop", key="huge", fields={"notes": huge})
    with pytest.raises(
        InvalidChange,
        match=rf"^activity note is {MAX_TEXT + 1} characters long; the limit is {MAX_TEXT}$",
    ):
        shop.record_activity(shop.deal_id("fits"), "call", "n" * (MAX_TEXT + 1))
    with db_session(shop) as s:
        assert [d.key for d in repo.list_deals(s)] == ["fits"]


def test_a_refused_select_value_is_quoted_escaped_and_short(shop):
    with pytest.raises(
        InvalidChange, match=r"^field 'size': 'XL\\udfff' is not one of its options \(S, M\)$"
    ):
        shop.create_deal("shop", key="k", fields={"size": "XL\udfff"})
    with pytest.raises(
        InvalidChange, match=r"^field 'size': 'LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL… is not one"
    ):
        shop.create_deal("shop", key="k", fields={"size": "L" * 1_000_000})


def test_simulate_reports_a_refused_event_and_goes_on(tmp_path):
    rules = tmp_path / "shop.json"
    rules.write_text(json.dumps(FUNNEL), encoding="utf-8")
    lines = [
        {
            "at": "2026-03-02T09:00:00Z",
            "event": "create",
            "funnel": "shop",
            "deal": "BAD-1",
            "fields": {"phone": PHONE, "notes": "\udfff"},
        },
        {
            "at": "2026-03-02T09:01:00Z",
            "event": "create",
            "funnel": "shop",
            "deal": "BAD-\udfff",
            "fields": {"phone": PHONE},
        },
        {
            "at": "2026-03-02T09:02:00Z",
            "event": "create",
            "funnel": "shop",
            "deal": "NUL-1",
            "fields": {"phone": PHONE, "notes": "x\u0000y"},
        },
        {
            "at": "2026-03-02T09:03:00Z",
            "event": "create",
            "funnel": "shop",
            "deal": "GOOD-1",
            "fields": {"phone": PHONE, "notes": "ok"},
        },
        {"at": "2026-03-02T09:04:00Z", "event": "activity", "deal": "GOOD-1", "note": "a\u0000"},
        {"at": "2026-03-02T09:05:00Z", "event": "end"},
    ]
    scenario = tmp_path / "scenario.jsonl"
    # json.dumps writes the surrogate as the escape \udfff, as a real scenario file would hold it.
    scenario.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "simulate", str(scenario), "--rules", str(rules)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr and result.stderr == ""
    out = [json.loads(x) for x in result.stdout.splitlines()]
    assert out[0] == {
        "at": "2026-03-02T09:00:00Z",
        "deal": "BAD-1",
        "error": "field 'notes' is not valid Unicode text: a lone surrogate (U+DFFF at character 1)",
    }
    assert out[1] == {
        "at": "2026-03-02T09:01:00Z",
        "deal": "BAD-\\udfff",
        "error": "deal key is not valid Unicode text: a lone surrogate (U+DFFF at character 5)",
    }
    assert out[2]["deal"] == "NUL-1" and out[2]["error"].startswith(
        "field 'notes' contains the control character NUL"
    )
    assert out[3]["deal"] == "GOOD-1" and out[3]["params"]["text"] == "Hi : ok"
    assert out[4]["deal"] == "GOOD-1" and out[4]["error"].startswith(
        "activity note contains the control character NUL"
    )
    assert len(out) == 5

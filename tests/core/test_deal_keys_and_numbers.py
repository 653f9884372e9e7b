"""Deal keys, text lengths and numbers are checked where they enter: refused with a clear sentence.

Runs on both backends: a generated key colliding with an old row, a title longer than its column and a
number no column holds read the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from engine.errors import InvalidChange
from storage import repositories as repo
from tests.support.database import execute
from tests.support.funnels import funnel
from tests.support.sessions import db_session


def test_an_explicit_key_shaped_like_a_generated_one_is_refused(conveyor):
    with pytest.raises(InvalidChange, match=r"deal key 'D-2' looks like a generated key"):
        conveyor.create_deal("techflow", key="D-2", title="Explicit")
    first = conveyor.create_deal("techflow", title="Keyless")
    second = conveyor.create_deal("techflow", title="Keyless too")
    assert conveyor.deal(first).key == f"D-{first}" and conveyor.deal(second).key == f"D-{second}"


def test_keys_that_only_resemble_generated_ones_are_accepted(conveyor):
    ids = [
        conveyor.create_deal("techflow", key=k) for k in ("D-2a", "d-3", "ACME-D-4", "  crm-77  ")
    ]
    assert [conveyor.deal(i).key for i in ids] == ["D-2a", "d-3", "ACME-D-4", "crm-77"]
    with pytest.raises(InvalidChange, match="a deal with key 'crm-77' already exists"):
        conveyor.create_deal("techflow", key="crm-77")


def test_a_generated_key_colliding_with_old_data_is_a_clear_error_not_an_integrity_error(
    conveyor, backend
):
    # A row written before explicit D-<n> keys were refused holds the key the next deal would get.
    first = conveyor.create_deal("techflow", title="first")
    execute(backend, f"UPDATE deals SET key = 'D-{first + 1}' WHERE id = {first}")
    with pytest.raises(
        InvalidChange,
        match=r"was created by someone else at the same time; nothing was saved; try again",
    ):
        conveyor.create_deal("techflow", title="second")
    with db_session(conveyor) as s:
        assert [d.title for d in repo.list_deals(s)] == ["first"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": "x" * 400}, "field 'title' is 400 characters long; the limit is 300"),
        ({"phone": "1" * 51}, "field 'phone' is 51 characters long; the limit is 50"),
        ({"email": "a" * 195 + "@x.com"}, "field 'email' is 201 characters long; the limit is 200"),
    ],
    ids=["title", "phone", "email"],
)
def test_deal_text_longer_than_its_column_is_refused(conveyor, fields, message):
    with pytest.raises(InvalidChange, match=message):
        conveyor.create_deal("techflow", fields=fields)
    deal = conveyor.create_deal("techflow", title="ok")
    with pytest.raises(InvalidChange, match=message):
        conveyor.update_deal(deal, fields)
    assert conveyor.deal(deal).title == "ok"


def test_a_long_key_and_a_long_manager_name_are_refused(conveyor):
    with pytest.raises(InvalidChange, match="deal key is 101 characters long; the limit is 100"):
        conveyor.create_deal("techflow", key="k" * 101)
    with pytest.raises(
        InvalidChange, match="manager name is 201 characters long; the limit is 200"
    ):
        conveyor.add_manager("m" * 201)


@pytest.mark.parametrize(
    "value",
    [float("inf"), float("-inf"), float("nan"), 10**400, 2e15],
    ids=["inf", "-inf", "nan", "10**400", "2e15"],
)
def test_non_finite_and_huge_numbers_are_refused_everywhere(conveyor, value):
    with pytest.raises(InvalidChange, match="must be a finite number between -1e\\+15 and 1e\\+15"):
        conveyor.create_deal("techflow", fields={"amount": value})
    deal = conveyor.create_deal("techflow", fields={"amount": 100})
    with pytest.raises(InvalidChange, match="field 'amount' must be a finite number"):
        conveyor.update_deal(deal, {"amount": value})
    with pytest.raises(InvalidChange, match="event data 'amount' must be a finite number"):
        conveyor.record_event(deal, "payment_received", data={"amount": value})
    state = conveyor.deal(deal)
    assert state.amount == 100 and state.signals == {}
    assert conveyor.dry_run(deal)  # the deal still evaluates
    conveyor.save_ruleset(funnel("scored", []))
    scored = conveyor.create_deal("scored", fields={"score": 7})
    with pytest.raises(InvalidChange, match="field 'score' must be a finite number"):
        conveyor.update_deal(scored, {"score": value})
    with pytest.raises(InvalidChange, match="field 'score' must be a finite number"):
        conveyor.create_deal("scored", fields={"score": value})
    assert conveyor.deal(scored).fields["score"] == 7


def test_negative_amounts_are_refused_and_event_data_is_checked_by_its_field(conveyor):
    with pytest.raises(InvalidChange, match="field 'amount' cannot be negative, got -5"):
        conveyor.create_deal("techflow", fields={"amount": -5})
    deal = conveyor.create_deal("techflow", fields={"amount": 0})
    # A payment's amount is data the event carries into the numeric field paid_amount: checked as
    # that field's values are (finite, at most 1e15), not as the deal's own amount.
    with pytest.raises(InvalidChange, match="field 'paid_amount' needs a number"):
        conveyor.record_event(deal, "payment_received", data={"amount": "lots"})
    assert conveyor.deal(deal).signals == {}
    conveyor.record_event(deal, "payment_received", data={"amount": 1e15})
    state = conveyor.deal(deal)
    assert "payment_received" in state.signals and state.fields["paid_amount"] == 1e15
    conveyor.save_ruleset(funnel("scored", []))
    scored = conveyor.create_deal(
        "scored", fields={"score": -3}
    )  # a custom number may be below zero
    assert conveyor.deal(scored).fields["score"] == -3

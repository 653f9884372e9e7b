"""A message is rendered in the client's language: the deal's own ``language`` field when the funnel
declares one, else the funnel's ``language``; tasks and notifications take per-language titles too."""

from __future__ import annotations

from engine.outbox.dispatcher import dispatch_internal, dispatch_messages
from storage import repositories as repo
from tests.support.channels import messaging_funnel
from tests.support.sessions import db_session

SMS = {
    "name": "send_sms",
    "params": {"text": {"uk": "Дякуємо, {title}!", "en": "Thank you, {title}!"}},
}
TASK = {
    "name": "create_task",
    "params": {"title": {"uk": "Зателефонувати {title}", "en": "Call {title}"}, "due_in_hours": 1},
}


def _texts(conveyor, deal: int) -> tuple[list[str], list[str]]:
    with db_session(conveyor) as s:
        return [m.text for m in repo.list_messages(s, deal)], [
            t.title for t in repo.list_tasks(s, deal_id=deal)
        ]


def test_the_deals_language_field_wins_over_the_funnels_language(conveyor):
    conveyor.save_ruleset(messaging_funnel([TASK, SMS], language="en"))
    uk = conveyor.create_deal(
        "outreach", title="Acme", fields={"phone": "+380501234567", "language": "uk"}
    )
    en = conveyor.create_deal("outreach", title="Globex", fields={"phone": "+380501234568"})
    dispatch_internal(conveyor)
    dispatch_messages(conveyor)
    assert _texts(conveyor, uk) == (["Дякуємо, Acme!"], ["Зателефонувати Acme"])
    assert _texts(conveyor, en) == (
        ["Thank you, Globex!"],
        ["Call Globex"],
    )  # no language: the funnel's


def test_a_funnel_without_a_language_writes_english(conveyor):
    conveyor.save_ruleset(messaging_funnel([SMS]))
    deal = conveyor.create_deal("outreach", title="Acme", fields={"phone": "+380501234567"})
    dispatch_messages(conveyor)
    assert _texts(conveyor, deal)[0] == ["Thank you, Acme!"]

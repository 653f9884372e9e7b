"""The Actions review lists a message to a manager that needs a person (dead, with the gateway's
answer, the manager as its recipient) and its Retry button queues it again, audited; a manager who
sees only their own deals is not shown another manager's message."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from storage import repositories as repo
from storage.models import Message, OutboxAction
from tests.builder.support import plain, sign_in
from tests.support.sessions import db_session

ROOT = Path(__file__).resolve().parents[2]
ANSWER = "telegram refused: Bad Request: chat not found"


def _page_script(root: str) -> None:
    import importlib
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    importlib.import_module("builder.views.actions_review").render()


def _page(role: str = "owner", name: str | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page_script, args=(str(ROOT),), default_timeout=60)
    return sign_in(at, role, name)


def _a_dead_message_to(demo_db, manager: str) -> int:
    """One of the demo's messages to ``manager``, as if Telegram had refused it for good."""
    manager_id = next(m.id for m in demo_db.deals.managers() if m.name == manager)
    with db_session(demo_db) as s:
        row = s.scalars(
            select(OutboxAction)
            .where(OutboxAction.manager_id == manager_id, OutboxAction.firing_id.is_(None))
            .order_by(OutboxAction.id)
        ).first()
        assert row is not None, "the demo queues messages to its managers"
        row.status, row.last_error, row.attempts = "dead", ANSWER, 1
        msg = s.scalar(select(Message).where(Message.outbox_id == row.id))
        msg.status, msg.channel, msg.to = "dead", "telegram", "111"
        s.commit()
        return row.id


def test_a_dead_message_to_a_manager_needs_attention_and_retry_queues_it(demo_db):
    outbox_id = _a_dead_message_to(demo_db, "Olena Kovalenko")
    at = _page().run()
    assert not at.exception, [e.value for e in at.exception]
    text = plain("\n".join(m.value for m in at.markdown))
    assert "message to manager **Olena Kovalenko**" in text
    assert ANSWER in plain("\n".join(c.value for c in at.caption))
    at.button(key=f"ar_retry_{outbox_id}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db_session(demo_db) as s:
        row = repo.get_outbox(s, outbox_id)
        assert (row.status, row.attempts) == ("pending", 0)
    [entry] = [e for e in demo_db.audit.entries() if e.kind == "action_retried"]
    assert entry.actor == "owner" and entry.detail["action"] == outbox_id


def test_a_manager_on_their_own_deals_does_not_see_another_managers_message(demo_db):
    outbox_id = _a_dead_message_to(demo_db, "Olena Kovalenko")
    at = _page("manager", "Petro Shevchenko").run()
    assert not at.exception
    assert f"ar_retry_{outbox_id}" not in [b.key for b in at.button]
    mine = _page("manager", "Olena Kovalenko").run()
    assert f"ar_retry_{outbox_id}" in [b.key for b in mine.button]

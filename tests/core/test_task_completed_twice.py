"""A task two managers complete at once is recorded once: one task_done event, one activity."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import run_until_idle
from storage import repositories as repo
from storage.models import Deal, Task
from tests.support.sessions import db_session


def test_a_task_completed_by_someone_else_meanwhile_is_recorded_once(conveyor, backend, clock):
    deal = conveyor.create_deal("techflow", title="Lead")
    run_until_idle(conveyor)
    with db_session(conveyor) as s:
        [task] = repo.list_tasks(s, deal_id=deal, status="open")
        task_id, seq_before = task.id, s.get(Deal, deal).activity_seq
    other = Conveyor(backend, clock=clock)
    clicked: list[bool] = []

    def the_other_click_lands(session: Session) -> None:
        # Our first commit is complete_task's read of the task (still open); the other manager's
        # click lands between that read and our locked write.
        if not clicked:
            clicked.append(True)
            other.complete_task(task_id)

    event.listen(Session, "after_commit", the_other_click_lands)
    try:
        conveyor.complete_task(task_id)
    finally:
        event.remove(Session, "after_commit", the_other_click_lands)
        other.close()
    assert clicked
    with db_session(conveyor) as s:
        assert len(repo.list_events(s, deal, kinds=["task_done"])) == 1
        assert s.get(Task, task_id).status == "done"
        assert s.get(Deal, deal).activity_seq == seq_before + 1

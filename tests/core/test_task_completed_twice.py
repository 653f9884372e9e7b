"""A task two managers complete at once is recorded once: one task_done event, one activity."""

from __future__ import annotations

from typing import Any

from engine.core.conveyor import Conveyor
from engine.outbox.dispatcher import run_until_idle
from storage import repositories as repo
from storage.models import Deal, Task
from tests.support.sessions import db_session


def test_a_task_completed_by_someone_else_meanwhile_is_recorded_once(
    conveyor, backend, clock, monkeypatch
):
    deal = conveyor.create_deal("techflow", title="Lead")
    run_until_idle(conveyor)
    with db_session(conveyor) as s:
        [task] = repo.list_tasks(s, deal_id=deal, status="open")
        task_id, seq_before = task.id, s.get(Deal, deal).activity_seq
    other = Conveyor(backend, clock=clock)
    real_change = conveyor.deals._change

    def change_after_the_other_click(*args: Any, **kwargs: Any) -> None:
        other.complete_task(
            task_id
        )  # the other manager's click lands between our read and our write
        real_change(*args, **kwargs)

    monkeypatch.setattr(conveyor.deals, "_change", change_after_the_other_click)
    try:
        conveyor.complete_task(task_id)
    finally:
        other.close()
    with db_session(conveyor) as s:
        assert len(repo.list_events(s, deal, kinds=["task_done"])) == 1
        assert s.get(Task, task_id).status == "done"
        assert s.get(Deal, deal).activity_seq == seq_before + 1

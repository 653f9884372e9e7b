"""Health of the engine service, as ``conveyor status`` shows it: one screen for an operator.

Read-only: last tick and its duration, the outbox by status, the age of the oldest unfinished
action and how long the oldest runnable one has waited, and which engine processes were seen
recently (their heartbeats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage import repositories as repo

if TYPE_CHECKING:
    from engine.conveyor import Conveyor

#: An engine whose heartbeat is older than this (and at least 3 ticks) is shown as not seen recently.
RECENT = timedelta(minutes=2)


@dataclass(frozen=True)
class EngineSeen:
    engine_id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    stopped_at: datetime | None
    last_tick_at: datetime | None
    last_tick_seconds: float | None
    alive: bool


@dataclass(frozen=True)
class Health:
    now: datetime
    counts: dict[str, int]
    oldest_pending_at: datetime | None  # created_at of the oldest action not yet done or dead
    oldest_ready_at: datetime | None  # due time of the longest-waiting action that could run now
    last_tick_at: datetime | None
    last_tick_seconds: float | None
    engines: list[EngineSeen] = field(default_factory=list)
    #: Deals the last tick could not evaluate (isolated, logged, retried an hour later); None: not reported.
    last_tick_failed: int | None = None

    @property
    def oldest_ready_age(self) -> timedelta | None:
        return None if self.oldest_ready_at is None else max(self.now - self.oldest_ready_at, timedelta(0))

    @property
    def alive(self) -> list[EngineSeen]:
        return [e for e in self.engines if e.alive]

    def problems(self) -> list[str]:
        """What an operator should look at; empty when healthy."""
        out = []
        if not self.alive:
            out.append("no engine seen recently: start one with `conveyor engine`")
        if self.counts.get("dead"):
            out.append(f"{self.counts['dead']} dead action(s): see `conveyor actions --status dead`")
        if self.last_tick_failed:
            out.append(f"the last tick could not evaluate {self.last_tick_failed} deal(s): see the engine log"
                       " (they are retried an hour later)")
        age = self.oldest_ready_age
        if age is not None and age > timedelta(minutes=10):
            out.append(f"the oldest ready action has waited {_age(age)}")
        return out


def health(conveyor: Conveyor) -> Health:
    now = conveyor.clock.now()
    with conveyor.session() as s:
        counts = repo.outbox_counts(s)
        oldest = repo.oldest_ready(s, now)
        pending_since = repo.oldest_pending(s)
        beats = repo.list_heartbeats(s)
    engines = []
    for b in beats:
        tick = float((b.last_tick_summary or {}).get("tick_seconds") or 60)
        recent = max(RECENT, timedelta(seconds=3 * tick))
        engines.append(EngineSeen(b.engine_id, b.host, b.pid, b.started_at, b.seen_at, b.stopped_at,
                                  b.last_tick_at, b.last_tick_seconds,
                                  alive=b.stopped_at is None and now - b.seen_at <= recent))
    ticked = [b for b in beats if b.last_tick_at is not None]
    last = max(ticked, key=lambda b: b.last_tick_at, default=None)
    return Health(now=now, counts=counts, oldest_pending_at=pending_since, oldest_ready_at=oldest,
                  last_tick_at=last.last_tick_at if last else None,
                  last_tick_seconds=last.last_tick_seconds if last else None, engines=engines,
                  last_tick_failed=(last.last_tick_summary or {}).get("deals_failed") if last else None)


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def render(h: Health) -> str:
    """The text ``conveyor status`` prints (values from the database with control characters escaped)."""
    from engine.clock import display_zone, for_display
    from engine.printable import printable

    lines = [f"status at {for_display(h.now, '%Y-%m-%d %H:%M:%S')} (times in {display_zone().key})"]
    if h.last_tick_at is None:
        lines.append("last tick:      never")
    else:
        failed = "" if h.last_tick_failed is None else f", {h.last_tick_failed} deal(s) failed"
        lines.append(f"last tick:      {for_display(h.last_tick_at, '%Y-%m-%d %H:%M:%S')}"
                     f" ({_age(h.now - h.last_tick_at)} ago), took {h.last_tick_seconds or 0:.3f} s{failed}")
    order = ["pending", "sending", "failed", "dead", "done"]
    counts = ", ".join(f"{k} {h.counts.get(k, 0)}" for k in order)
    others = ", ".join(f"{printable(k)} {v}" for k, v in sorted(h.counts.items()) if k not in order)
    lines.append(f"actions:        {counts}{', ' + others if others else ''}")
    if h.oldest_pending_at is None:
        lines.append("oldest pending: none (every action is done or dead)")
    else:
        lines.append(f"oldest pending: {_age(max(h.now - h.oldest_pending_at, timedelta(0)))} old "
                     "(queued, retrying or being sent)")
    age = h.oldest_ready_age
    lines.append(f"oldest ready:   {'none waiting' if age is None else _age(age) + ' waiting to run'}")
    lines.append(f"engines:        {len(h.alive)} seen recently, {len(h.engines)} known")
    for e in h.engines:
        state = "running" if e.alive else ("stopped" if e.stopped_at else "not seen")
        tick = "" if e.last_tick_seconds is None else f", last tick {e.last_tick_seconds:.3f} s"
        lines.append(f"  {printable(e.engine_id):<40} {state:<9} seen {_age(h.now - e.seen_at)} ago{tick}")
    problems = h.problems()
    lines.append("health:         " + ("ok" if not problems else "ATTENTION"))
    lines += [f"  - {printable(p)}" for p in problems]
    return "\n".join(lines)

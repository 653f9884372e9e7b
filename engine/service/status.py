"""Health of the engine service, as ``conveyor status`` shows it: one screen for an operator.

Read-only: last tick and its duration, the outbox by status, the age of the oldest unfinished
action and how long the oldest runnable one has waited, and which engine processes were seen
recently (their heartbeats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage.errors import StorageError

if TYPE_CHECKING:
    from engine.core.conveyor import Conveyor

#: How often an engine writes its heartbeat, unless its heartbeat says otherwise (engine.service).
HEARTBEAT_SECONDS = 10
#: A heartbeat older than this many heartbeat intervals reads "not responding": killed or stuck.
STALE_AFTER_BEATS = 3
#: An engine that stopped responding this recently (without a clean stop) needs a look: health ATTENTION.
REPORT_STALE_FOR = timedelta(hours=1)


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
    #: Not stopped, but its heartbeat is older than ``STALE_AFTER_BEATS`` intervals: killed or stuck.
    stale: bool = False

    @property
    def state(self) -> str:
        return "running" if self.alive else "stopped" if self.stopped_at else "not responding"


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
        return (
            None
            if self.oldest_ready_at is None
            else max(self.now - self.oldest_ready_at, timedelta(0))
        )

    @property
    def alive(self) -> list[EngineSeen]:
        return [e for e in self.engines if e.alive]

    def problems(self) -> list[str]:
        """What an operator should look at; empty when healthy."""
        out = []
        if not self.alive:
            out.append("no engine seen recently: start one with `conveyor engine`")
        for e in self.engines:
            if e.stale and self.now - e.seen_at <= REPORT_STALE_FOR:
                out.append(
                    f"engine {e.engine_id} is not responding: last heartbeat {_age(self.now - e.seen_at)}"
                    " ago without a clean stop (killed, or stuck: `kill -USR1 <pid>` shows where)"
                )
        if self.counts.get("dead"):
            out.append(
                f"{self.counts['dead']} dead action(s): see `conveyor actions --status dead`"
            )
        if self.last_tick_failed:
            out.append(
                f"the last tick could not evaluate {self.last_tick_failed} deal(s): see the engine log"
                " (they are retried an hour later)"
            )
        age = self.oldest_ready_age
        if age is not None and age > timedelta(minutes=10):
            out.append(f"the oldest ready action has waited {_age(age)}")
        return out


def health(conveyor: Conveyor) -> Health:
    """Read-only: a deferred transaction on SQLite, so it answers while a writer holds the lock."""
    from sqlalchemy.exc import SQLAlchemyError

    from storage.db import describe_error

    now = conveyor.clock.now()
    try:
        snapshot = conveyor.engines.snapshot(now)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the engine status: {describe_error(exc)}") from None
    counts, oldest, pending_since = (
        snapshot.counts,
        snapshot.oldest_ready_at,
        snapshot.oldest_pending_at,
    )
    beats = snapshot.heartbeats
    engines = []
    for b in beats:
        beat = float((b.last_tick_summary or {}).get("heartbeat_seconds") or HEARTBEAT_SECONDS)
        # A heartbeat from the future (another host's clock ahead, a clock step) counts as fresh.
        fresh = now - b.seen_at <= timedelta(seconds=STALE_AFTER_BEATS * beat)
        engines.append(
            EngineSeen(
                b.engine_id,
                b.host,
                b.pid,
                b.started_at,
                b.seen_at,
                b.stopped_at,
                b.last_tick_at,
                b.last_tick_seconds,
                alive=b.stopped_at is None and fresh,
                stale=b.stopped_at is None and not fresh,
            )
        )
    last = max(
        (b for b in beats if b.last_tick_at is not None),
        key=lambda b: b.last_tick_at or now,
        default=None,
    )
    return Health(
        now=now,
        counts=counts,
        oldest_pending_at=pending_since,
        oldest_ready_at=oldest,
        last_tick_at=last.last_tick_at if last else None,
        last_tick_seconds=last.last_tick_seconds if last else None,
        engines=engines,
        last_tick_failed=(last.last_tick_summary or {}).get("deals_failed") if last else None,
    )


def _age(delta: timedelta) -> str:
    # Never negative: a time written by a host whose clock is ahead of ours reads "0 s ago".
    seconds = max(0, int(delta.total_seconds()))
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
        lines.append(
            f"last tick:      {for_display(h.last_tick_at, '%Y-%m-%d %H:%M:%S')}"
            f" ({_age(h.now - h.last_tick_at)} ago), took {h.last_tick_seconds or 0:.3f} s{failed}"
        )
    order = ["pending", "sending", "failed", "dead", "done"]
    counts = ", ".join(f"{k} {h.counts.get(k, 0)}" for k in order)
    others = ", ".join(f"{printable(k)} {v}" for k, v in sorted(h.counts.items()) if k not in order)
    lines.append(f"actions:        {counts}{', ' + others if others else ''}")
    if h.oldest_pending_at is None:
        lines.append("oldest pending: none (every action is done or dead)")
    else:
        lines.append(
            f"oldest pending: {_age(max(h.now - h.oldest_pending_at, timedelta(0)))} old "
            "(queued, retrying or being sent)"
        )
    age = h.oldest_ready_age
    lines.append(
        f"oldest ready:   {'none waiting' if age is None else _age(age) + ' waiting to run'}"
    )
    lines.append(f"engines:        {len(h.alive)} seen recently, {len(h.engines)} known")
    for e in h.engines:
        tick = "" if e.last_tick_seconds is None else f", last tick {e.last_tick_seconds:.3f} s"
        lines.append(
            f"  {printable(e.engine_id):<40} {e.state:<14} seen {_age(h.now - e.seen_at)} ago{tick}"
        )
    problems = h.problems()
    lines.append("health:         " + ("ok" if not problems else "ATTENTION"))
    lines += [f"  - {printable(p)}" for p in problems]
    return "\n".join(lines)

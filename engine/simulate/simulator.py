"""The simulator: a scenario (JSON lines) on a fresh in-memory database under a virtual clock.

The clock starts at the first event and ticks every N minutes between events; after every event and
every tick the outbox is dispatched, and each executed action is printed as one JSON line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from engine.clock import VirtualClock, format_instant, parse_instant
from engine.core.conveyor import Conveyor
from engine.errors import ConveyorError
from engine.outbox.dispatcher import Executed, run_until_idle
from engine.text import storable

#: Scenario lines that name the sample funnel's declared events by their old commands, kept so every
#: scenario written before events were declared runs unchanged: line event -> declared event name.
SIGNAL_ALIASES = {
    "attach_proposal": "proposal_attached",
    "proposal_opened": "proposal_opened",
    "client_replied": "client_replied",
    "payment": "payment_received",
}
EVENTS = (
    "manager",
    "create",
    "update",
    "move",
    "signal",
    *SIGNAL_ALIASES,
    "activity",
    "task_done",
    "end",
)
DEFAULT_FUNNEL = "techflow"


class ScenarioInvalid(ConveyorError):
    """A scenario line that cannot be run (bad JSON, unknown event, missing key, time going back)."""


@dataclass
class Event:
    line: int
    at: datetime
    kind: str
    data: dict[str, Any]


def parse_scenario(lines: Iterable[str], source: str = "scenario") -> list[Event]:
    events: list[Event] = []
    problems: list[str] = []
    for n, raw in enumerate(lines, start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(raw, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            problems.append(f"{source}:{n}: not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        except ValueError as exc:  # NaN / Infinity: Python reads them, JSON does not have them
            problems.append(f"{source}:{n}: {exc}")
            continue
        if not isinstance(data, dict):
            problems.append(f"{source}:{n}: a scenario line must be a JSON object")
            continue
        kind = data.get("event")
        if kind not in EVENTS:
            problems.append(
                f"{source}:{n}: unknown event {kind!r} (expected one of: {', '.join(EVENTS)})"
            )
            continue
        try:
            at = parse_instant(str(data["at"]))
        except KeyError:
            problems.append(f"{source}:{n}: missing 'at'")
            continue
        except ValueError:
            problems.append(f"{source}:{n}: 'at' is not an ISO-8601 time: {data['at']!r}")
            continue
        if kind not in ("manager", "end") and not isinstance(data.get("deal"), str | int):
            problems.append(f"{source}:{n}: event '{kind}' needs a 'deal' key")
            continue
        if events and at < events[-1].at:
            problems.append(
                f"{source}:{n}: time goes backwards ({data['at']} is before line {events[-1].line})"
            )
            continue
        events.append(Event(n, at, kind, data))
    if problems:
        raise ScenarioInvalid("scenario is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
    return events


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (write a number or null)")


class Simulator:
    def __init__(
        self,
        rules: Iterable[Path],
        tick_minutes: float = 15,
        emit: Callable[[dict[str, Any]], None] = print,
        db: str = "sqlite://",
    ):
        """``db`` is the database the run uses, in-memory SQLite by default; it should start empty."""
        self.rule_paths = list(rules)
        self.db = db
        self.tick = timedelta(minutes=tick_minutes)
        if self.tick <= timedelta(0):
            raise ScenarioInvalid("--tick-minutes must be positive")
        self.emit = emit
        self.keys: dict[str, int] = {}

    def run(self, events: list[Event]) -> None:
        if not events:
            return
        self.clock = VirtualClock(events[0].at)
        self.conveyor = Conveyor(self.db, clock=self.clock)
        try:
            self._play(events)
        finally:
            self.conveyor.close()  # also when a rule file or a scenario line stops the run

    def _play(self, events: list[Event]) -> None:
        self._load_rules()
        next_tick = events[0].at + self.tick
        for ev in events:
            while next_tick <= ev.at:
                self.clock.set(next_tick)
                self.conveyor.tick()
                self._dispatch()
                next_tick += self.tick
            self.clock.set(ev.at)
            if ev.kind == "end":
                continue
            try:
                self._apply(ev)
            except ConveyorError as exc:
                # Escaped: the refused value (a lone surrogate in the deal key) must not stop the printing.
                self.emit(
                    {
                        "at": format_instant(ev.at),
                        "deal": storable(str(ev.data.get("deal", ""))),
                        "error": storable(str(exc)),
                    }
                )
            self._dispatch()

    def _load_rules(self) -> None:
        # The same loading as ``conveyor load``: strict JSON, every funnel known, chains in order.
        self.conveyor.rulesets.load_files(self.rule_paths)

    def _deal(self, ev: Event) -> int:
        key = str(ev.data["deal"])
        if key not in self.keys:
            raise ConveyorError(f"deal '{key}' was not created earlier in the scenario")
        return self.keys[key]

    def _apply(self, ev: Event) -> None:
        c, d = self.conveyor, ev.data
        if ev.kind == "manager":
            c.add_manager(str(d.get("name", "")), str(d.get("phone", "")))
        elif ev.kind == "create":
            key = str(d["deal"])
            if key in self.keys:
                raise ConveyorError(f"deal '{key}' already exists")
            self.keys[key] = c.create_deal(
                d.get("funnel", DEFAULT_FUNNEL),
                key=key,
                stage=d.get("stage"),
                fields=_fields(d),
                manager=d.get("manager"),
            )
        elif ev.kind == "update":
            c.update_deal(self._deal(ev), _fields(d))
        elif ev.kind == "move":
            c.move_deal(self._deal(ev), str(d.get("stage", "")))
        elif ev.kind == "signal":
            c.record_event(self._deal(ev), str(d.get("name", "")), _instant(d), _data(d))
        elif ev.kind in SIGNAL_ALIASES:
            # ``payment`` carried its amount beside the other keys: it is the event's data.amount.
            data = (
                {"amount": d["amount"]}
                if ev.kind == "payment" and d.get("amount") is not None
                else None
            )
            c.record_event(self._deal(ev), SIGNAL_ALIASES[ev.kind], data=data)
        elif ev.kind == "activity":
            c.record_activity(self._deal(ev), str(d.get("kind", "call")), str(d.get("note", "")))
        elif ev.kind == "task_done":
            deal_id = self._deal(ev)
            open_tasks = [
                t.id
                for t in c.queries.tasks(deal_id, status="open")
                if not d.get("title") or t.title == d["title"]
            ]
            if not open_tasks:
                raise ConveyorError("no open task to complete on this deal")
            c.complete_task(open_tasks[0])

    def _dispatch(self) -> None:
        for ex in run_until_idle(self.conveyor):
            self.emit(self._line(ex))

    def _line(self, ex: Executed) -> dict[str, Any]:
        key = self.conveyor.deal(ex.deal_id).key if ex.deal_id is not None else ""  # a digest
        line: dict[str, Any] = {
            "at": format_instant(ex.at),
            "deal": key,
            "rule": ex.rule_id,
            "action": ex.action,
            "params": ex.params,
        }
        if ex.status != "done":
            line["status"], line["error"] = ex.status, ex.error
        return line


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    fields = data.get("fields")
    if fields is None:
        return {}
    if not isinstance(fields, dict):
        raise ConveyorError(
            f"'fields' must be a JSON object of field names and values, got {json.dumps(fields)[:60]}"
        )
    return dict(fields)


def _data(data: dict[str, Any]) -> dict[str, Any] | None:
    carried = data.get("data")
    if carried is not None and not isinstance(carried, dict):
        raise ConveyorError(
            f"'data' must be a JSON object of names and values, got {json.dumps(carried)[:60]}"
        )
    return carried


def _instant(data: dict[str, Any]) -> datetime | None:
    """A signal's ``happened`` time (it may be earlier than the line's ``at``, when it was reported)."""
    if data.get("happened") is None:
        return None
    try:
        return parse_instant(str(data["happened"]))
    except ValueError:
        raise ConveyorError(f"'happened' is not an ISO-8601 time: {data['happened']!r}") from None


def run_scenario(
    scenario: TextIO | Iterable[str],
    rules: Iterable[Path],
    tick_minutes: float = 15,
    emit: Callable[[dict[str, Any]], None] | None = None,
    db: str = "sqlite://",
) -> list[dict[str, Any]]:
    """Run a scenario on ``db`` (in-memory SQLite by default); returns the printed lines (and passes each
    to ``emit`` as it happens)."""
    lines: list[dict[str, Any]] = []

    def collect(line: dict[str, Any]) -> None:
        lines.append(line)
        if emit:
            emit(line)

    Simulator(rules, tick_minutes, collect, db=db).run(parse_scenario(scenario))
    return lines

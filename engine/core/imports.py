"""Bulk import of deals (``Conveyor.imports``): a CSV file or a batch of API items into one funnel.

Every row is checked first, as ``Deals.create`` checks one deal (``engine.core.deal_input``, the
stage, its entry guard, the manager), and every problem is reported with its line (or item index),
column and reason. A dry run stops there; a strict import imports nothing if any row is bad; else
the good rows are written in chunks, each one transaction: the deals, their history lines, and the
firings and outbox rows their rules decide, evaluated for the whole chunk at once
(``engine.rules.evaluators.bulk``: the same decisions and due times as one-by-one creation). A crash
leaves whole chunks; rows whose key already exists are skipped, so the same import run again
imports the rest. One audit entry per import.
"""

from __future__ import annotations

import contextlib
import gc
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy.orm import Session

from engine.core.access import Actor, Permission, require
from engine.core.audit import record
from engine.core.context import Context
from engine.core.deal_input import (
    MAX_SHORT_TEXT,
    clean_text,
    jsonable,
)
from engine.core.evaluation import firing_values, outbox_values
from engine.core.import_checks import (
    MISSING,
    CheckedRow,
    RowProblem,
    check_rows,
    columns,
    known_targets,
)
from engine.core.import_files import parse_mapping, read_csv
from engine.core.rulesets import RuleSets
from engine.document.ruleset import RuleSet, StageKind
from engine.document.suggestions import suggest
from engine.errors import ConveyorError, InvalidChange
from engine.i18n import _
from engine.rules.deal import BUILTIN_FIELDS, DealState
from engine.rules.evaluators.bulk import decide_many
from engine.rules.evaluators.compiled import CompiledRuleSet, compile_ruleset
from storage import repositories as repo
from storage.models import Deal, DealEvent, Firing, OutboxAction

__all__ = ["CHUNK", "MAX_BATCH", "ImportInterrupted", "ImportReport", "Imports", "RowProblem"]

#: Rows written per transaction: a crash leaves whole chunks.
CHUNK = 5000
#: Most deals one ``POST /api/v1/deals:batch`` may carry.
MAX_BATCH = 1000
#: ``progress(rows written, rows to write)``, called as each chunk commits.
Progress = Callable[[int, int], None]


@dataclass
class ImportReport:
    import_id: str
    funnel: str
    rows: int
    dry_run: bool
    strict: bool
    #: Deals written (for a dry run: that would be written).
    imported: int = 0
    #: Rows whose key a deal already has (an earlier run of the same import): left alone.
    skipped: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    #: Columns of the file that no field takes (reported; not imported).
    warnings: list[RowProblem] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    chunks: int = 0
    fired: int = 0

    @property
    def bad_rows(self) -> int:
        return len({p.row for p in self.problems})


class ImportInterrupted(ConveyorError):
    """An import stopped after some chunks were committed: they stay, the rest was not written."""


#: An imported deal's declared events: none yet (one object for every row: serialised once).
_NO_SIGNALS: dict[str, Any] = {}


@dataclass
class _NewDeal(DealState):
    """An imported deal as evaluation reads it (``closed``: it was imported into a closed stage)."""

    closed: bool = False


class Imports:
    """Check and import many deals into one funnel (CSV from the CLI, a batch from the API)."""

    def __init__(self, context: Context, rulesets: RuleSets):
        self._context = context
        self._rulesets = rulesets

    def import_csv(
        self,
        data: bytes,
        funnel: str,
        *,
        mapping: dict[str, str] | str | None = None,
        delimiter: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
        chunk: int = CHUNK,
        progress: Progress | None = None,
        source: str = "file",
        actor: Actor | str = "system",
    ) -> ImportReport:
        """Import the deals of a CSV file (``data``: its bytes) into ``funnel``.

        ``mapping``: CSV column → field (``key``, ``stage``, ``manager``, a built-in or custom field,
        or ``-`` to leave it out); a column named like a field needs none. ``progress(done, total)`` is
        called as each chunk commits.
        """
        who = require(actor, Permission.WRITE_DEALS)
        rs, version_id = self._active(funnel)
        table = read_csv(data, delimiter=delimiter, name=source)
        targets, warnings = columns(
            rs,
            table.header,
            parse_mapping(mapping) if isinstance(mapping, str) else dict(mapping or {}),
            table.header_line,
        )
        width = len(table.header)
        shape = [
            RowProblem(
                line,
                "",
                _("the row has {count} cells; the header has {header}").format(
                    count=len(cells), header=width
                ),
            )
            for line, cells in table.rows
            if len(cells) > width
        ]
        picked = [i for i, _target in targets]
        get = itemgetter(*picked) if len(picked) > 1 else None
        rows: list[tuple[int, Sequence[Any]]] = []
        for line, cells in table.rows:
            if len(cells) < width:  # a short row: its missing cells are empty
                cells = cells + [""] * (width - len(cells))
            rows.append((line, get(cells) if get is not None else [cells[i] for i in picked]))
        return self._run(
            rs,
            version_id,
            [(table.header[i], target) for i, target in targets],
            rows,
            who,
            text=True,
            dry_run=dry_run,
            strict=strict,
            chunk=chunk,
            progress=progress,
            source=source,
            warnings=warnings,
            problems=shape,
        )

    def import_items(
        self,
        funnel: str,
        items: Sequence[dict[str, Any]],
        *,
        dry_run: bool = False,
        strict: bool = False,
        actor: Actor | str = "system",
    ) -> ImportReport:
        """Import deals given as API items (``key``, ``title``, ``phone``, ``email``, ``amount``,
        ``stage``, ``manager``, ``fields``); a problem's row is the item's index, its column the
        item's path (``fields.budget``)."""
        who = require(actor, Permission.WRITE_DEALS)
        if len(items) > MAX_BATCH:
            raise InvalidChange(
                _("a batch holds at most {limit} deals, got {count}").format(
                    limit=MAX_BATCH, count=len(items)
                )
            )
        rs, version_id = self._active(funnel)
        cols: dict[str, str] = {}  # column label (an item's path) -> target field
        problems: list[RowProblem] = []
        given: list[tuple[int, dict[str, Any]]] = []
        for index, item in enumerate(items):
            cells = {
                name: value
                for name, value in item.items()
                if name != "fields" and value is not None
            }
            for name in cells:
                cols.setdefault(name, name)
            for name, value in (item.get("fields") or {}).items():
                label = f"fields.{name}"
                if name in BUILTIN_FIELDS or rs.field(name) is not None:
                    cols.setdefault(label, name)
                    cells[label] = value
                else:
                    problems.append(
                        RowProblem(
                            index,
                            label,
                            _("unknown field '{name}' in funnel '{funnel}'").format(
                                name=name, funnel=rs.funnel
                            )
                            + suggest(name, known_targets(rs)),
                        )
                    )
            given.append((index, cells))
        labels = list(cols)
        rows: list[tuple[int, Sequence[Any]]] = [
            (index, [cells.get(c, MISSING) for c in labels]) for index, cells in given
        ]
        return self._run(
            rs,
            version_id,
            list(cols.items()),
            rows,
            who,
            text=False,
            dry_run=dry_run,
            strict=strict,
            chunk=CHUNK,
            progress=None,
            source="api",
            warnings=[],
            problems=problems,
        )

    # -- the two phases ----------------------------------------------------------------------------
    def _active(self, funnel: str) -> tuple[RuleSet, int]:
        clean_text(_("funnel"), funnel, MAX_SHORT_TEXT, one_line=True)
        with self._context.read_transaction() as s:
            return self._rulesets.active(s, funnel)

    def _run(self, *args: Any, **kwargs: Any) -> ImportReport:
        # An import allocates millions of small objects that live until their chunk commits; the
        # cyclic collector would walk them again and again (a third of the time). Reference counting
        # still frees everything; the collector runs again when the import ends.
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._checked_and_written(*args, **kwargs)
        finally:
            if paused:
                gc.enable()

    def _checked_and_written(
        self,
        rs: RuleSet,
        version_id: int,
        cols: list[tuple[str, str]],
        rows: list[tuple[int, Sequence[Any]]],
        who: Actor,
        *,
        text: bool,
        dry_run: bool,
        strict: bool,
        chunk: int,
        progress: Progress | None,
        source: str,
        warnings: list[RowProblem],
        problems: list[RowProblem],
    ) -> ImportReport:
        report = ImportReport(f"imp-{uuid.uuid4().hex[:12]}", rs.funnel, len(rows), dry_run, strict)
        report.warnings = warnings
        with self._context.read_transaction() as s:
            managers = {m.name: m.id for m in repo.list_managers(s)}
        good, found = check_rows(rs, cols, rows, managers, who, text=text)
        problems = sorted([*problems, *found], key=lambda p: p.row)
        report.problems = problems
        bad = {p.row for p in problems}
        good = [r for r in good if r.row not in bad]
        with self._context.read_transaction() as s:
            existing = repo.existing_keys(s, [r.key for r in good if r.key])
        report.skipped = sum(1 for r in good if r.key in existing)
        good = [r for r in good if r.key not in existing]
        if dry_run or (strict and (problems or (warnings and text))):
            report.imported = 0 if not dry_run else len(good)
            return report
        self._write(rs, version_id, good, who, report, max(1, chunk), progress)
        with self._context.transaction() as s:
            record(
                s,
                who,
                "deals_imported",
                self._context.clock.now(),
                subject=f"{rs.funnel}: {report.imported}",
                detail={
                    "import": report.import_id,
                    "funnel": rs.funnel,
                    "source": source[:200],
                    "rows": report.rows,
                    "imported": report.imported,
                    "skipped": report.skipped,
                    "bad_rows": report.bad_rows,
                },
            )
        return report

    def _write(
        self,
        rs: RuleSet,
        version_id: int,
        good: list[CheckedRow],
        who: Actor,
        report: ImportReport,
        chunk: int,
        progress: Progress | None,
    ) -> None:
        compiled = compile_ruleset(rs)
        # The chunks' connection held its checkpoints back (repo.bulk_settings): the WAL is written
        # back once here, inside the import's time (each chunk was durable at its commit). After a
        # failure it is tried too, without hiding the failure (the chunks are safe in the WAL).
        try:
            self._chunks(rs, version_id, compiled, good, who, report, chunk, progress)
        except BaseException:
            with contextlib.suppress(Exception):
                repo.write_back(self._context.engine)
            raise
        repo.write_back(self._context.engine)

    def _chunks(
        self,
        rs: RuleSet,
        version_id: int,
        compiled: CompiledRuleSet,
        good: list[CheckedRow],
        who: Actor,
        report: ImportReport,
        chunk: int,
        progress: Progress | None,
    ) -> None:
        done = 0
        for start in range(0, len(good), chunk):
            part = good[start : start + chunk]
            try:
                with self._context.transaction() as s:
                    repo.bulk_settings(s)
                    _rs, active = self._rulesets.active(s, rs.funnel)
                    if active != version_id:
                        raise InvalidChange(
                            _(
                                "funnel '{funnel}' got a new active version during the import; the"
                                " rest was checked against the old one"
                            ).format(funnel=rs.funnel)
                        )
                    # Keys taken since the check (another import, a website): skipped, as on a re-run.
                    taken = repo.existing_keys(s, [r.key for r in part if r.key])
                    if taken:
                        report.skipped += len(taken)
                        part = [r for r in part if r.key not in taken]
                    ids = repo.allocate_ids(s, Deal, len(part))
                    fired = _write_chunk(
                        s, rs, compiled, version_id, part, ids, who, report.import_id, self._now()
                    )
            except Exception as exc:
                if not report.chunks:
                    raise
                raise ImportInterrupted(
                    _(
                        "the import stopped after {count} deals in {chunks} chunks were written"
                        " (they stay); nothing of the rest was written: {reason}. Run the same"
                        " import again: rows whose key exists are skipped (rows without a key"
                        " would be imported twice)"
                    ).format(
                        count=report.imported,
                        chunks=report.chunks,
                        reason=str(exc) if isinstance(exc, ConveyorError) else type(exc).__name__,
                    )
                ) from exc
            report.chunks += 1
            report.imported += len(part)
            report.fired += fired
            report.keys += [r.key or f"D-{i}" for r, i in zip(part, ids, strict=True)]
            done += len(good[start : start + chunk])
            if progress is not None:
                progress(done, len(good))

    def _now(self) -> datetime:
        return self._context.clock.now()


def _write_chunk(
    s: Session,
    rs: RuleSet,
    compiled: CompiledRuleSet,
    version_id: int,
    part: list[CheckedRow],
    ids: list[int],
    who: Actor,
    import_id: str,
    now: datetime,
) -> int:
    """One chunk's deals, history lines, firings and outbox rows; returns the firings written."""
    closed = {st.id for st in rs.stages if st.kind is not StageKind.OPEN}
    states = [
        _NewDeal(
            id=i,
            key=r.key or f"D-{i}",
            funnel=rs.funnel,
            stage=r.stage,
            created_at=now,
            stage_entered_at=now,
            title=r.builtin.get("title") or "",
            phone=r.builtin.get("phone") or "",
            email=r.builtin.get("email") or "",
            amount=r.builtin.get("amount"),
            manager_id=r.manager_id,
            fields=r.custom,
            closed=r.stage in closed,
        )
        for r, i in zip(part, ids, strict=True)
    ]
    decisions, dues = decide_many(compiled, states, now)
    repo.insert_rows(
        s,
        Deal,
        [
            dict(
                id=d.id,
                key=d.key,
                funnel_id=rs.funnel,
                title=d.title,
                phone=d.phone,
                email=d.email,
                amount=d.amount,
                stage=d.stage,
                closed=d.closed,
                stage_visit=1,
                stage_entered_at=now,
                activity_seq=0,
                last_activity_at=None,
                manager_id=d.manager_id,
                signals=_NO_SIGNALS,
                fields=d.fields,
                created_at=now,
                updated_at=now,
                next_due_at=due,
            )
            for d, due in zip(states, dues, strict=True)
        ],
    )
    # The history line of each deal: created by this import, in its stage (its fields are the
    # deal's own until changed); one JSON object per stage, shared by the rows that have it.
    created = {st.id: {"stage": st.id, "import": import_id} for st in rs.stages}
    repo.insert_rows(
        s,
        DealEvent,
        [
            dict(deal_id=d.id, at=now, kind="created", actor=who.label, data=created[d.stage])
            for d in states
        ],
    )
    # Firings and their outbox rows as Evaluation.record writes them; new deals have no firings yet,
    # so every decision is new and the ids are taken up front (no RETURNING to read back). Rows with
    # the same JSON (a rule's chain and action parameters, the values most deals read) share one
    # object, so it is serialised once.
    fired = [(d.id, x) for d, ds in zip(states, decisions, strict=True) for x in ds]
    firing_ids = repo.allocate_ids(s, Firing, len(fired))
    shared: dict[str, Any] = {}

    def json(value: Any) -> Any:
        key = repr(
            value
        )  # equal reprs of these values (text, numbers, lists, dicts) mean equal JSON
        found = shared.get(key)
        if found is None:
            found = shared[key] = jsonable(value)
        return found

    repo.insert_rows(
        s,
        Firing,
        [
            {
                "id": fid,
                **firing_values(deal_id, rs.funnel, version_id, x, now, "create", json=json),
            }
            for fid, (deal_id, x) in zip(firing_ids, fired, strict=True)
        ],
    )
    outbox = [
        row
        for fid, (deal_id, x) in zip(firing_ids, fired, strict=True)
        for row in outbox_values(fid, deal_id, x, now, json=json)
    ]
    repo.insert_rows(s, OutboxAction, outbox)
    return len(fired)

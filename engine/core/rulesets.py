"""Rule-set versions: validate, save, activate (rollback), list, export, and load rule files in order.

Versions are immutable, so a parsed one is cached for the life of the process; ``active`` is what
evaluation and the outbox use to find a funnel's current rules inside their own transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.core import timers
from engine.core.access import SYSTEM as SYSTEM_ACTOR
from engine.core.access import Actor, ActorKind, Permission, actor_of, require
from engine.core.audit import record
from engine.core.context import Context
from engine.core.deal_input import MAX_COMMENT, MAX_SHORT_TEXT, clean_text
from engine.document.ruleset import RuleSet
from engine.document.suggestions import suggest
from engine.document.templates import instantiate
from engine.document.templates import template as find_template
from engine.document.validate import parse_json, validate_document, validate_text
from engine.errors import ConveyorError, InvalidChange, NotFound, Problem, RuleSetInvalid
from storage import repositories as repo

__all__ = ["RuleSets", "VersionInfo", "read_rule_files"]


@dataclass(frozen=True)
class VersionInfo:
    funnel: str
    id: int
    version: int
    comment: str
    author: str
    created_at: datetime
    active: bool


class RuleSets:
    """The stored versions of every funnel's rule set."""

    def __init__(self, context: Context):
        self._context = context
        self._cache: dict[int, RuleSet] = {}

    # -- reads -----------------------------------------------------------------------------------
    def known_funnels(self) -> list[str]:
        with self._context.transaction() as s:
            return [f.id for f in repo.list_funnels(s)]

    def funnels(self) -> list[tuple[str, str]]:
        """(id, name) of every stored funnel."""
        with self._context.transaction() as s:
            return [(f.id, f.name) for f in repo.list_funnels(s)]

    def get(self, funnel: str, version: int | None = None) -> RuleSet:
        """The active rule set of ``funnel`` (or a given version number)."""
        clean_text("funnel", funnel, None, one_line=True)
        with self._context.transaction() as s:
            if version is None:
                f = repo.get_funnel(s, funnel)
                if f is None or f.active_version_id is None:
                    raise NotFound(
                        f"no funnel '{funnel}'{suggest(funnel, [x.id for x in repo.list_funnels(s)])}"
                    )
                return self.by_version_id(s, f.active_version_id)
            row = repo.get_version_by_number(s, funnel, version)
            if row is None:
                raise NotFound(f"funnel '{funnel}' has no version {version}")
            return self.by_version_id(s, row.id)

    def versions(self, funnel: str) -> list[VersionInfo]:
        clean_text("funnel", funnel, None, one_line=True)
        with self._context.transaction() as s:
            f = repo.get_funnel(s, funnel)
            if f is None:
                raise NotFound(f"no funnel '{funnel}'")
            return [_version_info(v, f.active_version_id) for v in repo.list_versions(s, funnel)]

    def export(self, funnel: str, fmt: str = "conveyor", version: int | None = None) -> str:
        """The active (or a given) version as JSON: Conveyor's document or business-rules' rule list."""
        rs = self.get(funnel, version)
        if fmt == "conveyor":
            return rs.to_json()
        if fmt == "business-rules":
            return json.dumps(rs.business_rules(), ensure_ascii=False, indent=2) + "\n"
        raise ValueError(f"unknown export format '{fmt}' (use 'conveyor' or 'business-rules')")

    # -- inside a caller's transaction (evaluation, the outbox) ----------------------------------
    def by_version_id(self, s: Session, version_id: int) -> RuleSet:
        rs = self._cache.get(version_id)
        if rs is None:
            row = repo.get_version(s, version_id)
            if row is None:
                raise NotFound(f"no rule-set version {version_id}")
            rs = RuleSet.model_validate_json(row.document)
            self._cache[version_id] = rs
        return rs

    def active(self, s: Session, funnel_id: str) -> tuple[RuleSet, int]:
        """(rule set, version id) of the funnel's active version, or NotFound."""
        f = repo.get_funnel(s, funnel_id)
        if f is None or f.active_version_id is None:
            raise NotFound(f"no funnel '{funnel_id}'")
        # A strong reference keeps the row in the session's (weak) identity map: the next lookup in
        # this transaction (every deal of a tick batch) is a dict hit, not a SELECT.
        s.info.setdefault("conveyor.funnels", {})[funnel_id] = f
        return self.by_version_id(s, f.active_version_id), f.active_version_id

    # -- changes ---------------------------------------------------------------------------------
    def validate(
        self, document: RuleSet | dict[str, Any] | str | bytes, *, known_funnels: Iterable[str] = ()
    ) -> RuleSet:
        """Check a document; ``known_funnels``: funnels ``start_process`` may name besides the stored ones."""
        if isinstance(document, RuleSet):
            document = document.to_document()
        known = [*self.known_funnels(), *known_funnels]
        if isinstance(document, str | bytes):
            return validate_text(document, known_funnels=known)
        return validate_document(document, known_funnels=known)

    def save(
        self,
        document: RuleSet | dict[str, Any] | str | bytes,
        *,
        comment: str = "",
        author: str = "",
        activate: bool = True,
        known_funnels: Iterable[str] = (),
        actor: Actor | str = "system",
    ) -> VersionInfo:
        """Validate and store a new immutable version (active unless ``activate=False``).

        Refused while deals sit in a stage the new version no longer has (move them first).
        """
        who = require(actor, Permission.WRITE_FUNNELS)
        if who.kind is ActorKind.USER or (who.kind is ActorKind.API_KEY and not author):
            author = who.label  # a signed-in user (or a key) is the author, whatever a page says
        clean_text("version comment", comment, MAX_COMMENT)
        clean_text("author", author, MAX_SHORT_TEXT, one_line=True)
        ruleset = self.validate(document, known_funnels=known_funnels)
        now = self._context.clock.now()
        try:
            with self._context.transaction() as s:
                if activate:
                    _refuse_orphaned_deals(
                        s, ruleset, f"version of funnel '{ruleset.funnel}'", RuleSetInvalid
                    )
                funnel = repo.ensure_funnel(s, ruleset.funnel, ruleset.name, now)
                row = repo.add_version(
                    s,
                    ruleset.funnel,
                    ruleset.to_json(),
                    ruleset.fingerprint(),
                    comment,
                    author,
                    now,
                )
                if activate or funnel.active_version_id is None:
                    funnel.active_version_id = row.id
                    timers.rearm_funnel(s, ruleset.funnel, now)  # the new rules' timers differ
                record(
                    s,
                    actor_of(author) if who == SYSTEM_ACTOR and author else who,
                    "version_saved",
                    now,
                    subject=f"{ruleset.funnel} v{row.version}",
                    detail={
                        "funnel": ruleset.funnel,
                        "version": row.version,
                        "comment": comment,
                        "active": funnel.active_version_id == row.id,
                    },
                )
                self._cache[row.id] = ruleset
                return _version_info(row, funnel.active_version_id)
        except IntegrityError:
            # Two saves of one funnel at once: both read the same last version number (or both found
            # no funnel); the unique key let one through. Nothing of this save was stored.
            raise ConveyorError(
                f"someone saved a version of funnel '{ruleset.funnel}' at the same time;"
                " nothing was saved from this attempt; try again"
            ) from None

    def load_dir(
        self, folder: str | Path, *, comment: str = "", author: str = ""
    ) -> list[VersionInfo]:
        """Save every ``*.json`` in ``folder``; funnels that ``start_process`` names are saved first."""
        return self.load_files(sorted(Path(folder).glob("*.json")), comment=comment, author=author)

    def load_files(
        self, paths: Iterable[str | Path], *, comment: str = "", author: str = ""
    ) -> list[VersionInfo]:
        """Validate every file first (each may start the others' processes), then save them in order."""
        docs = read_rule_files(paths)
        folder_funnels = [
            d["funnel"] for _, d in docs if isinstance(d, dict) and isinstance(d.get("funnel"), str)
        ]
        checked = []
        for path, doc in docs:  # nothing is saved unless every file is valid
            try:
                checked.append((path, self.validate(doc, known_funnels=folder_funnels)))
            except RuleSetInvalid as exc:
                raise RuleSetInvalid(
                    [
                        Problem(f"{path.name}: {p.path}" if p.path else path.name, p.message)
                        for p in exc.problems
                    ]
                ) from None
        return [
            self.save(
                rs,
                comment=comment or f"loaded from {path.name}",
                author=author,
                known_funnels=folder_funnels,
            )
            for path, rs in checked
        ]

    def start_from_template(
        self,
        template: str,
        funnel: str | None = None,
        name: str | None = None,
        *,
        author: str = "",
        actor: Actor | str = "system",
    ) -> list[VersionInfo]:
        """A new funnel from a template (``engine.document.templates``), as its first version.

        The funnels its rules start are saved first when they are not stored yet; an id already taken
        is refused and nothing is saved.
        """
        doc = instantiate(template, funnel, name)
        known = set(self.known_funnels())
        if doc["funnel"] in known:
            raise ConveyorError(
                f"funnel '{doc['funnel']}' exists already; choose another id for the new funnel"
            )
        companions = [
            d for d in find_template(template).companion_documents() if d["funnel"] not in known
        ]
        names = [*known, doc["funnel"], *(d["funnel"] for d in companions)]
        for d in companions:  # validated before anything is saved
            self.validate(d, known_funnels=names)
        self.validate(doc, known_funnels=names)
        comment = f"started from the template '{template}'"
        saved = [
            self.save(d, comment=comment, author=author, known_funnels=names, actor=actor)
            for d in companions
        ]
        return [
            *saved,
            self.save(doc, comment=comment, author=author, known_funnels=names, actor=actor),
        ]

    def activate(self, funnel: str, version: int, *, actor: Actor | str = "system") -> VersionInfo:
        """Make an existing version the active one (rollback); refused while deals sit in a stage it lacks."""
        who = require(actor, Permission.WRITE_FUNNELS)
        clean_text("funnel", funnel, None, one_line=True)
        with self._context.transaction() as s:
            row = repo.get_version_by_number(s, funnel, version)
            if row is None:
                raise NotFound(f"funnel '{funnel}' has no version {version}")
            _refuse_orphaned_deals(
                s,
                self.by_version_id(s, row.id),
                f"version {version} of funnel '{funnel}'",
                InvalidChange,
            )
            f = repo.get_funnel(s, funnel)
            if f is None:
                raise NotFound(f"no funnel '{funnel}'")
            before = repo.version_numbers(s).get(f.active_version_id or -1, ("", None))[1]
            f.active_version_id = row.id
            record(
                s,
                who,
                "version_activated",
                self._context.clock.now(),
                subject=f"{funnel} v{version}",
                detail={"funnel": funnel, "version": version, "was": before},
            )
            timers.rearm_funnel(
                s, funnel, self._context.clock.now()
            )  # the next tick re-derives due times
            return _version_info(row, row.id)


def _version_info(row: Any, active_id: int | None) -> VersionInfo:
    return VersionInfo(
        funnel=row.funnel_id,
        id=row.id,
        version=row.version,
        comment=row.comment,
        author=row.author,
        created_at=row.created_at,
        active=row.id == active_id,
    )


def _refuse_orphaned_deals(
    s: Session, ruleset: RuleSet, what: str, error: type[ConveyorError]
) -> None:
    """Refuse a version that lacks a stage deals are in: they could neither move nor be evaluated."""
    stages = {st.id for st in ruleset.stages}
    lines = []
    for _funnel, stage, count in repo.deal_stage_counts(s, ruleset.funnel):
        if stage not in stages:
            keys = repo.deal_keys_in_stage(s, ruleset.funnel, stage, limit=5)
            more = " …" if count > len(keys) else ""
            lines.append(
                f"stage '{stage}' is missing but {count} deal(s) are in it ({', '.join(keys)}{more})"
            )
    if not lines:
        return
    message = (
        f"cannot activate this {what}: "
        + "; ".join(lines)
        + "; move those deals to another stage first, or keep the stage"
    )
    if error is RuleSetInvalid:
        raise RuleSetInvalid([Problem("stages", message)])
    raise error(message)


def read_rule_files(paths: Iterable[str | Path]) -> list[tuple[Path, Any]]:
    """Parse rule-set files (strict JSON: duplicate keys, NaN refused) in the order to save them.

    A funnel that another file's ``start_process`` names comes before that file, however long the
    chain (A starts B starts C: C, B, A); otherwise files keep name order. Cycles are fine: every
    file is validated knowing all the folder's funnels.
    """
    docs = [(Path(p), parse_json(Path(p).read_bytes(), str(p))) for p in sorted(paths, key=str)]
    by_funnel = {
        d["funnel"]: i
        for i, (_, d) in enumerate(docs)
        if isinstance(d, dict) and isinstance(d.get("funnel"), str)
    }

    def started(doc: Any) -> list[str]:
        if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
            return []
        out = []
        for rule in doc["rules"]:
            for action in (rule.get("actions") if isinstance(rule, dict) else None) or []:
                params = action.get("params") if isinstance(action, dict) else None
                if isinstance(params, dict) and isinstance(params.get("funnel"), str):
                    out.append(params["funnel"])
        return out

    order: list[int] = []
    seen: set[int] = set()

    def visit(i: int) -> None:  # depth-first, targets first; the chain is at most the folder long
        if i in seen:
            return
        seen.add(i)
        for funnel in started(docs[i][1]):
            if funnel in by_funnel:
                visit(by_funnel[funnel])
        order.append(i)

    for i in range(len(docs)):
        visit(i)
    return [docs[i] for i in order]

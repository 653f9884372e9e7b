"""The project's own source files as the architecture tests read them (parsed, never imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The runtime packages whose shape the issue constrains (sizes, classes, private names).
RUNTIME = ("engine", "storage", "builder")
#: Every folder of Python the project keeps: their modules may not reach into the runtime's privates.
ALL = (*RUNTIME, "benchmarks", "tests")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    @property
    def lines(self) -> int:
        return len(self.path.read_text(encoding="utf-8").splitlines())


def modules(packages: tuple[str, ...] = RUNTIME) -> Iterator[Module]:
    """Every module of ``packages`` except Alembic's generated migrations."""
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if "migrations" in rel.parts:
                continue
            name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
            yield Module(name, path, ast.parse(path.read_text(encoding="utf-8")))


def is_private(name: str) -> bool:
    """``_x`` but not a dunder, nor gettext's ``_``."""
    return (
        name.startswith("_") and name != "_" and not (name.startswith("__") and name.endswith("__"))
    )

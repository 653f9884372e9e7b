"""Modules and classes stay small: no module of engine/, storage/ or builder/ over 600 lines, no class
with more than 25 public methods — counted honestly: properties count, and so do methods a class
inherits from the project's own classes, so a mixin cannot hide a god object.
"""

from __future__ import annotations

import ast
import inspect

import pytest

from tests.architecture.project import Module, is_private, modules

MAX_LINES = 600
MAX_PUBLIC_METHODS = 25


def _own_public_methods(cls: ast.ClassDef) -> set[str]:
    return {
        node.name
        for node in cls.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not is_private(node.name)
        and not node.name.startswith("__")
    }


def public_methods_by_class() -> dict[str, set[str]]:
    """``module.Class`` → its public methods and properties, those inherited from project classes included."""
    classes: dict[str, tuple[ast.ClassDef, Module]] = {}
    by_short_name: dict[str, list[str]] = {}
    for module in modules():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                qualified = f"{module.name}.{node.name}"
                classes[qualified] = (node, module)
                by_short_name.setdefault(node.name, []).append(qualified)

    def methods(qualified: str, seen: frozenset[str] = frozenset()) -> set[str]:
        node, _ = classes[qualified]
        found = _own_public_methods(node)
        for base in node.bases:
            short = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
            for candidate in by_short_name.get(short or "", []):
                if candidate not in seen:
                    found |= methods(candidate, seen | {qualified})
        return found

    return {qualified: methods(qualified) for qualified in classes}


def test_no_module_is_longer_than_600_lines() -> None:
    too_long = {m.name: m.lines for m in modules() if m.lines > MAX_LINES}
    assert too_long == {}


def test_no_class_has_more_than_25_public_methods() -> None:
    too_wide = {
        name: len(found)
        for name, found in public_methods_by_class().items()
        if len(found) > MAX_PUBLIC_METHODS
    }
    assert too_wide == {}


def test_the_conveyor_facade_has_at_most_25_public_methods_at_run_time() -> None:
    # What a caller can actually call on it, inheritance included; services are attributes set in
    # __init__ (``conveyor.deals``), and it may not forward unknown names to them behind the count.
    from engine.core.conveyor import Conveyor

    public = [
        name
        for name, member in inspect.getmembers(Conveyor)
        if not name.startswith("_") and (callable(member) or isinstance(member, property))
    ]
    assert len(public) <= MAX_PUBLIC_METHODS, sorted(public)
    assert not hasattr(Conveyor, "__getattr__")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("class A:\n    def a(self): ...\n    def _b(self): ...\n    def __init__(self): ...", 1),
        ("class A:\n    @property\n    def a(self): ...\n    async def b(self): ...", 2),
        ("class M:\n    def m(self): ...\nclass A(M):\n    def a(self): ...", 2),
    ],
    ids=["private-and-dunder-left-out", "properties-and-coroutines-count", "mixins-count"],
)
def test_the_count_sees_what_is_public(source: str, expected: int, tmp_path, monkeypatch) -> None:
    package = tmp_path / "engine"
    package.mkdir()
    (package / "shape.py").write_text(source)
    for folder in ("storage", "builder"):
        (tmp_path / folder).mkdir()
    monkeypatch.setattr("tests.architecture.project.ROOT", tmp_path)
    assert len(public_methods_by_class()["engine.shape.A"]) == expected

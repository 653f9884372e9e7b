"""No private name (``_x``) crosses a module boundary: what a module keeps to itself may change
without a caller noticing. A module may not import another module's private name, read or patch a
private attribute of an object it did not define, nor name one in a ``monkeypatch`` target string.
"""

from __future__ import annotations

import ast

import pytest

from tests.architecture.project import ALL, Module, is_private, modules

#: Private by spelling only: the standard library's documented ``os._exit`` and namedtuple's API.
ALLOWED_ATTRIBUTES = {"_exit", "_asdict", "_replace", "_fields", "_make"}


def _defined_here(module: Module) -> set[str]:
    """Private names a module defines itself: its functions, classes, methods and attributes."""
    names = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if is_private(n)}


def crossings(module: Module) -> list[str]:
    own = _defined_here(module)
    found = []
    for node in ast.walk(module.tree):
        where = f"{module.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom):
            found += [f"{where} imports {a.name}" for a in node.names if is_private(a.name)]
        elif isinstance(node, ast.Attribute) and is_private(node.attr):
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not on_self and node.attr not in own and node.attr not in ALLOWED_ATTRIBUTES:
                found.append(f"{where} uses {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("setattr"):
            for arg in node.args[:2]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    if any(is_private(part) for part in arg.value.split(".")):
                        found.append(f"{where} patches {arg.value!r}")
    return found


def test_no_private_name_crosses_a_module_boundary() -> None:
    assert [c for module in modules(ALL) for c in crossings(module)] == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from engine.x import _helper", ["m:1 imports _helper"]),
        ("import engine.x as x\nx._helper()", ["m:2 uses x._helper"]),
        ("def f(c):\n    return c.deals._change", ["m:2 uses c.deals._change"]),
        ("def f(mp, c):\n    mp.setattr(c, '_change', 1)", ["m:2 patches '_change'"]),
        ("def f(mp):\n    mp.setattr('engine.x._y', 1)", ["m:2 patches 'engine.x._y'"]),
        ("class A:\n    def f(self, o):\n        return self._x + o._x\n    _x = 1", []),
        ("from engine.i18n import _\nimport os\nos._exit(0)", []),
    ],
    ids=[
        "import",
        "module-attribute",
        "object-attribute",
        "monkeypatch-object",
        "monkeypatch-string",
        "own-class-private",
        "gettext-and-os-exit",
    ],
)
def test_the_check_sees_a_crossing(source: str, expected: list[str], tmp_path) -> None:
    path = tmp_path / "m.py"
    path.write_text(source)
    assert crossings(Module("m", path, ast.parse(source))) == expected

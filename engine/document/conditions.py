"""A rule's condition tree as one typed model, and the one visitor that walks it.

The JSON is business-rules' own: a group ``{"all": [...]}`` / ``{"any": [...]}`` or a leaf
``{"name": ..., "operator": ..., "value": ...}``; which key is present says which node it is.
``model_dump`` gives that same dict back, so exports stay identical. Every reader of a tree
(validator, evaluators, due times, reports, the builder) goes through ``Visitor``; none matches
on ``"all"``/``"any"`` keys itself.

Empty groups are representable (the builder's draft holds one while the owner adds rows); the
validator refuses them before anything evaluates, since business-rules would let one fire.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Tag,
    TypeAdapter,
    model_serializer,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "Condition",
    "ConditionNode",
    "Group",
    "Visitor",
    "leaves",
    "parse",
    "variable_names",
]

T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Condition(_Model):
    """A leaf: ``variable operator value``. ``value`` is required (business-rules reads it), may be null."""

    name: str
    operator: str
    value: Any

    @model_serializer(mode="plain")
    def _as_business_rules(self) -> dict[str, Any]:
        # Always all three keys, also under exclude_none: business-rules reads node["value"].
        return {"name": self.name, "operator": self.operator, "value": self.value}


class Group(_Model):
    """``all`` or ``any`` over child nodes (see ``AllOf``, ``AnyOf``)."""

    kind: ClassVar[str]

    @property
    def items(self) -> list[ConditionNode]:
        items: list[ConditionNode] = getattr(self, self.kind)
        return items


class AllOf(Group):
    kind: ClassVar[str] = "all"
    all: list[ConditionNode]


class AnyOf(Group):
    kind: ClassVar[str] = "any"
    any: list[ConditionNode]


def _tag(node: Any) -> str | None:
    if isinstance(node, dict):
        return "all" if "all" in node else "any" if "any" in node else "leaf"
    if isinstance(node, Group):
        return node.kind
    return "leaf" if isinstance(node, Condition) else None


ConditionNode = Annotated[
    Annotated[AllOf, Tag("all")] | Annotated[AnyOf, Tag("any")] | Annotated[Condition, Tag("leaf")],
    Discriminator(
        _tag,
        custom_error_type="condition_node",
        custom_error_message="a condition must be an object",
    ),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()

_ADAPTER: TypeAdapter[AllOf | AnyOf | Condition] = TypeAdapter(ConditionNode)


def parse(raw: Any) -> AllOf | AnyOf | Condition:
    """The model of a condition tree in business-rules JSON (``pydantic.ValidationError`` if malformed)."""
    return _ADAPTER.validate_python(raw)


class Visitor(Generic[T]):
    """One walk over a condition tree, with each node's JSON path (``conditions.all[1].any[0]``).

    ``visit`` dispatches: a leaf goes to ``leaf``; a group to ``group``, which by default visits
    the children first and hands their results to ``all_`` / ``any_`` (a fold). Override ``group``
    to walk top-down instead (the builder renders a group before its rows).
    """

    def visit(self, node: AllOf | AnyOf | Condition, path: str = "conditions") -> T:
        if isinstance(node, Condition):
            return self.leaf(node, path)
        return self.group(node, path)

    def group(self, node: Group, path: str) -> T:
        parts = [self.visit(child, child_path) for child_path, child in self.children(node, path)]
        return self.all_(node, parts, path) if node.kind == "all" else self.any_(node, parts, path)

    @staticmethod
    def children(node: Group, path: str) -> Iterator[tuple[str, AllOf | AnyOf | Condition]]:
        for i, child in enumerate(node.items):
            yield f"{path}.{node.kind}[{i}]", child

    def all_(self, node: Group, parts: list[T], path: str) -> T:
        raise NotImplementedError

    def any_(self, node: Group, parts: list[T], path: str) -> T:
        raise NotImplementedError

    def leaf(self, node: Condition, path: str) -> T:
        raise NotImplementedError


class _Leaves(Visitor[list[tuple[str, Condition]]]):
    def leaf(self, node: Condition, path: str) -> list[tuple[str, Condition]]:
        return [(path, node)]

    def all_(
        self, node: Group, parts: list[list[tuple[str, Condition]]], path: str
    ) -> list[tuple[str, Condition]]:
        return [leaf for part in parts for leaf in part]

    any_ = all_


def leaves(
    node: AllOf | AnyOf | Condition, path: str = "conditions"
) -> list[tuple[str, Condition]]:
    """Every leaf with its JSON path, in document order."""
    return _Leaves().visit(node, path)


def variable_names(node: AllOf | AnyOf | Condition) -> list[str]:
    """Variable names a tree reads, in first-use order."""
    return list(dict.fromkeys(leaf.name for _path, leaf in leaves(node)))

"""Typed intermediate representation produced by :mod:`codegen.semantics`.

Names are resolved (fields, macros, constants), literals folded, and string
right-hand sides turned into exact strings or :class:`StrMatcher` objects.
Comparison operators are normalised: ``=~`` becomes ``==`` and ``!~``
becomes ``!=`` with matchers on the right; a constant never stands left of a
field in an ordering or equality comparison. Spans are relative to the
source each node came from (a macro's nodes to the macro's text).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Union
from collections.abc import Iterator

from .errors import Span
from .fields import ITER, Field, FieldType


class Kind(str, enum.Enum):
    INT = "int"
    STR = "string"
    BOOL = "bool"
    IP = "ip"
    ANY = "any"  # the elements of an empty array


@dataclass(frozen=True, slots=True)
class Type:
    kind: Kind
    array: bool = False
    duration: bool = False
    time: bool = False

    def __str__(self) -> str:
        base = "duration" if self.duration else self.kind.value
        return f"{base} array" if self.array else base

    def element(self) -> Type:
        return Type(self.kind)


BOOL = Type(Kind.BOOL)
INT = Type(Kind.INT)
STR = Type(Kind.STR)

FIELD_KINDS = {FieldType.INT: Kind.INT, FieldType.STRING: Kind.STR, FieldType.BOOL: Kind.BOOL,
               FieldType.IP: Kind.IP}


def field_type(field: Field) -> Type:
    return Type(FIELD_KINDS[field.type], array=field.array, time=field.time)


@dataclass(frozen=True, slots=True)
class Const:
    """A folded value: int, str, bool, IP network, StrMatcher, or a tuple of those."""

    value: Any
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class FieldRef:
    field: Field
    span: Span
    via_variable: bool = False  # written ``${process.pid}``
    register: str | None = None  # ``process.ancestors[A].comm``: the value of element A only

    @property
    def type(self) -> Type:
        if self.register is not None:
            return Type(FIELD_KINDS[self.field.type], array=self.field.item_array, time=self.field.time)
        return field_type(self.field)


@dataclass(frozen=True, slots=True)
class Exists:
    """A rule with a named iterator: true when ``body`` holds with the register
    ``name`` bound to one element (0 .. ``count`` - 1, at most
    :data:`codegen.limits.MAX_ITERATOR_ELEMENTS`) of the iterator
    ``count`` counts (``process.ancestors.length``)."""

    name: str
    count: FieldRef
    body: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class VarRef:
    """A user variable (set by a ``set`` action), read at evaluation time."""

    name: str
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Template:
    """A string with variables or fields: ``"/proc/${process.pid}/maps"``,
    ``~"/home/%{process.user}/*"``. ``matcher``: ``""`` (the text itself),
    ``"pattern"`` or ``"glob"`` (the text, made at each evaluation, is one)."""

    parts: tuple[Union[str, Expr], ...]
    span: Span
    type: Type = STR
    matcher: str = ""


@dataclass(frozen=True, slots=True)
class Since:
    """``event.timestamp - operand`` (a time field compared with a duration)."""

    operand: Expr
    span: Span

    @property
    def type(self) -> Type:
        return Type(Kind.INT, array=type_of(self.operand).array, duration=True)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # "&&" | "||"
    operands: tuple[Expr, ...]
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # == != < <= > >= in "not in" allin
    left: Expr
    right: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Arith:
    op: str  # + - & | ^
    left: Expr
    right: Expr
    span: Span
    type: Type = INT


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" | "^"
    operand: Expr
    span: Span
    type: Type = INT


Expr = Union[Const, FieldRef, VarRef, Template, Since, Not, Logic, Compare, Arith, Unary, Exists]

NEGATION = {"==": "!=", "!=": "==", "in": "not in", "not in": "in"}
FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def type_of(node: Expr) -> Type:
    return node.type


def children(node: Expr) -> tuple[Expr, ...]:
    if isinstance(node, Logic):
        return node.operands
    if isinstance(node, (Compare, Arith)):
        return (node.left, node.right)
    if isinstance(node, (Not, Unary, Since)):
        return (node.operand,)
    if isinstance(node, Template):
        return tuple(p for p in node.parts if not isinstance(p, str))
    if isinstance(node, Exists):
        return (node.body,)
    return ()


def walk(node: Expr) -> Iterator[Expr]:
    """Pre-order traversal."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(children(n)))


def fields_of(node: Expr) -> list[Field]:
    seen: dict[str, Field] = {}
    for n in walk(node):
        if isinstance(n, FieldRef):
            seen.setdefault(n.field.name, n.field)
    return list(seen.values())


def render(node: Expr) -> str:
    """SECL-like text of an IR tree (for messages and debugging)."""
    if isinstance(node, Const):
        return _render_value(node.value)
    if isinstance(node, FieldRef):
        if node.register is not None:
            head, _, rest = node.field.name.partition(iterated(node.field))
            return f"{head}{iterated(node.field)}[{node.register}]{rest}"
        return f"${{{node.field.name}}}" if node.via_variable else node.field.name
    if isinstance(node, Exists):
        return render(node.body)
    if isinstance(node, VarRef):
        return f"${{{node.name}}}"
    if isinstance(node, Template):
        return '"' + "".join(p if isinstance(p, str) else render(p) for p in node.parts) + '"'
    if isinstance(node, Since):
        return f"(event.timestamp - {render(node.operand)})"
    if isinstance(node, Not):
        return f"!{render(node.operand)}"
    if isinstance(node, Logic):
        return "(" + f" {node.op} ".join(render(o) for o in node.operands) + ")"
    if isinstance(node, (Compare, Arith)):
        return f"({render(node.left)} {node.op} {render(node.right)})"
    return f"{node.op}{render(node.operand)}"


def iterated(field: Field) -> str:
    """The iterator part of an iterator field's name (``process.ancestors``)."""
    return ".".join(field.name.split(".")[: field.path.index(ITER)])


def _render_value(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_render_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)

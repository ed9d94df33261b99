"""SECL syntax tree: frozen, slotted dataclasses, each with its source span.

Spans are offsets into the expression text; :class:`codegen.errors.Source`
maps them to file positions. The tree is what the parser saw; names are not
resolved yet (``Ident`` may be a field, a macro or a constant).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from .errors import Span

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True, slots=True)
class Ident:
    """A field (``open.file.path``), a macro or a constant (``O_RDWR``)."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Variable:
    """``${name}``."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class IntLit:
    value: int
    span: Span


@dataclass(frozen=True, slots=True)
class DurationLit:
    """``5s``: nanoseconds, flagged as a duration."""

    value: int
    span: Span


@dataclass(frozen=True, slots=True)
class BoolLit:
    value: bool
    span: Span


@dataclass(frozen=True, slots=True)
class StringLit:
    """``"..."``. ``offsets[i]`` is the expression offset of ``value[i]``."""

    value: str
    offsets: Sequence[int]
    span: Span


@dataclass(frozen=True, slots=True)
class PatternLit:
    """``~"..."``: ``*`` wildcards (a glob on path fields)."""

    value: str
    offsets: Sequence[int]
    span: Span


@dataclass(frozen=True, slots=True)
class RegexLit:
    """``r"..."``: the text between the quotes, kept raw."""

    value: str
    offsets: Sequence[int]
    span: Span


@dataclass(frozen=True, slots=True)
class IPLit:
    """An IP address or a CIDR (an address is a one-address network)."""

    value: IPNetwork
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class ArrayLit:
    items: tuple[Node, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Unary:
    """``op`` is one of ``!`` ``-`` ``^`` (``not`` is spelled ``!``)."""

    op: str
    operand: Node
    span: Span


@dataclass(frozen=True, slots=True)
class Binary:
    """``op``: ``||`` ``&&`` (keywords normalised), comparisons, ``+ - & | ^``.

    ``op_span`` is the operator token; ``parens`` is true when the source put
    this node in parentheses (used to warn about mixed ``&&``/``||``).
    """

    op: str
    left: Node
    right: Node
    span: Span
    op_span: Span
    parens: bool = False


Node = Union[
    Ident, Variable, IntLit, DurationLit, BoolLit, StringLit, PatternLit, RegexLit,
    IPLit, ArrayLit, Unary, Binary,
]

LOGICAL_OPS = frozenset({"||", "&&"})
COMPARISON_OPS = frozenset({"==", "!=", "<", "<=", ">", ">=", "=~", "!~", "in", "not in", "allin"})
ARITHMETIC_OPS = frozenset({"+", "-", "&", "|", "^"})


def children(node: Node) -> tuple[Node, ...]:
    """Direct sub-nodes, left to right."""
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, ArrayLit):
        return node.items
    return ()

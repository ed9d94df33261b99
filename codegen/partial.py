"""Partial evaluation: can a rule still match when one field is fixed?

Three-valued (Kleene) logic: ``True`` (matches whatever the other fields
are), ``False`` (cannot match), ``None`` (unknown). Everything the fixed
field does not decide is unknown. Used to compute discarders (a value for
which every rule of the event type is ``False``) and, with symbolic values,
to check approvers and parent-directory discarders.

The fixed value can be concrete (``"/var/log/x"``; for a ``.path`` field the
file's ``name`` and lengths follow from it) or symbolic:

- :class:`PathsBelow` — "any path strictly below directory D";
- :class:`BasenameNotIn`, :class:`ValueNotIn`, :class:`MaskNone`,
  :class:`PrefixNotIn` — "a value outside the approver set" (see
  :mod:`codegen.approvers`).
- :class:`BasenameNotOf` — "a path whose basename differs from those of
  these other fields" (the task's executable: exec-name approvers).
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Optional
from collections.abc import Iterable

from . import ir, ops
from .fields import REGISTRY, Field
from .patterns import StrMatcher, glob_basename, literal_dir_prefix, pieces, wildcard_match

Tri = Optional[bool]
UNKNOWN: Tri = None
_UNK: Any = object()  # an unknown value (inside the evaluator)


def _not(a: Tri) -> Tri:
    return None if a is None else not a


def _and(values: Iterable[Tri]) -> Tri:
    result: Tri = True
    for v in values:
        if v is False:
            return False
        if v is None:
            result = None
    return result


def _or(values: Iterable[Tri]) -> Tri:
    result: Tri = False
    for v in values:
        if v is True:
            return True
        if v is None:
            result = None
    return result


# --- symbolic values ---------------------------------------------------------------

@dataclass(frozen=True)
class PathsBelow:
    """Any path strictly below ``directory`` (for parent-directory discarders)."""

    directory: str

    @property
    def prefix(self) -> str:
        return self.directory.rstrip("/") + "/"


@dataclass(frozen=True)
class BasenameNotIn:
    """A path whose basename is not in ``names``."""

    names: frozenset[str]


@dataclass(frozen=True)
class ValueNotIn:
    """A value not in ``values``."""

    values: frozenset[Any]


@dataclass(frozen=True)
class MaskNone:
    """A bit field with none of the bits of ``mask`` set."""

    mask: int


@dataclass(frozen=True)
class PrefixNotIn:
    """A path that starts with none of ``prefixes`` (directories, ending in ``/``)."""

    prefixes: frozenset[str]




@dataclass(frozen=True)
class BasenameNotOf:
    """A path (or name) whose basename differs from the basename of each of
    ``fields`` (``process.file.path``...): so it equals none of them."""

    fields: frozenset[str]


Symbolic = (PathsBelow, BasenameNotIn, ValueNotIn, MaskNone, PrefixNotIn, BasenameNotOf)


def glob_below(glob: str, directory: str) -> Tri:
    """Does ``glob`` match every (True), no (False) or some (None) path below ``directory``?"""
    if not glob.startswith("/"):
        return None
    dsegs = [s for s in directory.split("/") if s]
    gsegs = glob.split("/")[1:]
    for i, d in enumerate(dsegs):
        if i >= len(gsegs):
            return False
        g = gsegs[i]
        if g == "**":
            # the last segment: everything below; mid-path: what follows it
            # still has to match the path's end, which some paths below do
            return True if i == len(gsegs) - 1 else None
        if not wildcard_match(pieces(g), d):
            return False
    rest = gsegs[len(dsegs):]
    if not rest or rest == [""]:
        return False
    if rest == ["**"]:
        return True
    return None


def _below(value: Any, domain: PathsBelow) -> Tri:
    if isinstance(value, StrMatcher):
        return glob_below(value.text, domain.directory) if value.kind == "glob" else None
    if isinstance(value, str):
        return None if value.startswith(domain.prefix) and len(value) > len(domain.prefix) else False
    return None


def _basename_outside(value: Any, domain: BasenameNotIn) -> Tri:
    if isinstance(value, StrMatcher):
        if value.kind == "glob":
            base = glob_basename(value.text)
            if "*" not in base and base in domain.names:
                return False
        return None
    if isinstance(value, str):
        return False if posixpath.basename(value) in domain.names else None
    return None


def _prefix_outside(value: Any, domain: PrefixNotIn) -> Tri:
    """A path outside every prefix cannot equal (or match) a value whose every
    match starts with one of them."""
    if not isinstance(value, (str, StrMatcher)):
        return None
    head = literal_dir_prefix(value)
    if head is not None and any(head.startswith(p) for p in domain.prefixes):
        return False
    return None


def _symbolic_element(domain: Any, value: Any) -> Tri:
    """``fixed == value`` for one right-hand element, under a symbolic domain."""
    if isinstance(domain, PathsBelow):
        return _below(value, domain)
    if isinstance(domain, BasenameNotIn):
        return _basename_outside(value, domain)
    if isinstance(domain, ValueNotIn):
        return False if not isinstance(value, StrMatcher) and value in domain.values else None
    if isinstance(domain, PrefixNotIn):
        return _prefix_outside(value, domain)
    return None


# --- the evaluator -------------------------------------------------------------------

class PartialEvaluator:
    """Evaluates IR with one field fixed (``field`` to ``value``)."""

    def __init__(self, field: Field, value: Any, timestamp: int | None = None) -> None:
        self.field = field
        self.value = value
        self.timestamp = timestamp
        self.known: dict[str, Any] = {}
        if not isinstance(value, Symbolic):
            self.known[field.name] = value
            if field.glob and isinstance(value, str) and field.name.endswith(".path"):
                base = field.name[: -len(".path")]
                name = posixpath.basename(value)
                self.known.update({f"{base}.name": name, f"{base}.path.length": len(value),
                                   f"{base}.name.length": len(name)})
            if field.name == "event.timestamp" and isinstance(value, int):
                self.timestamp = value

    def truth(self, node: ir.Expr) -> Tri:
        if isinstance(node, ir.Logic):
            gen = (self.truth(o) for o in node.operands)
            return _and(gen) if node.op == "&&" else _or(gen)
        if isinstance(node, ir.Not):
            return _not(self.truth(node.operand))
        if isinstance(node, ir.Compare):
            return self.compare(node)
        if isinstance(node, ir.Exists):
            # some element makes the body true: false when no element can (the
            # body is false whatever the element's fields, which are unknown)
            return False if self.truth(node.body) is False else None
        value = self.value_of(node)
        return None if value is _UNK else bool(value)

    def value_of(self, node: ir.Expr) -> Any:
        if isinstance(node, ir.Const):
            return node.value
        if isinstance(node, ir.FieldRef):
            if node.register is not None:
                return _UNK  # one element of an iterator: never the fixed field
            return self.known.get(node.field.name, _UNK)
        if isinstance(node, ir.Since):
            v = self.value_of(node.operand)
            if v is _UNK or self.timestamp is None:
                return _UNK
            return [self.timestamp - x for x in v] if isinstance(v, list) else self.timestamp - v
        if isinstance(node, ir.Arith):
            a, b = self.value_of(node.left), self.value_of(node.right)
            return _UNK if a is _UNK or b is _UNK else ops.arith(node.op, a, b)
        if isinstance(node, ir.Unary):
            a = self.value_of(node.operand)
            return _UNK if a is _UNK else ops.UNARY[node.op](a)
        if isinstance(node, (ir.Logic, ir.Not, ir.Compare, ir.Exists)):
            t = self.truth(node)
            return _UNK if t is None else t
        return _UNK  # variables, templates

    def _is_fixed(self, node: ir.Expr) -> bool:
        return isinstance(node, ir.FieldRef) and node.register is None and node.field.name == self.field.name

    def compare(self, node: ir.Compare) -> Tri:
        op = node.op
        if op in ("!=", "not in"):
            return _not(self.compare(ir.Compare(ir.NEGATION[op], node.left, node.right, node.span)))
        if isinstance(self.value, Symbolic):
            return self._symbolic(node)
        left, right = self.value_of(node.left), self.value_of(node.right)
        if left is _UNK or right is _UNK:
            return None
        return ops.compare(op, left, right, node.left.type.array, node.right.type.array)

    def _symbolic(self, node: ir.Compare) -> Tri:
        domain, op = self.value, node.op
        if isinstance(domain, MaskNone):
            return self._mask(node, domain)
        if isinstance(domain, BasenameNotOf):
            return self._not_of(node, domain)
        if not self._is_fixed(node.left) or not isinstance(node.right, ir.Const):
            return None
        rhs = node.right.value
        if op == "==" and not node.right.type.array:
            return _symbolic_element(domain, rhs)
        if op == "in" or (op == "allin" and not node.left.type.array):
            # `allin` on a single value is `in` (`connect.addr.ip allin [cidr, ...]`)
            return _or(_symbolic_element(domain, v) for v in rhs)
        return None

    def _not_of(self, node: ir.Compare, domain: BasenameNotOf) -> Tri:
        """``fixed == other`` is false when ``other`` is one of the fields whose
        basename the fixed value's differs from (equal paths, equal basenames)."""
        if node.op != "==":
            return None
        for a, b in ((node.left, node.right), (node.right, node.left)):
            if (self._is_fixed(a) and isinstance(b, ir.FieldRef) and b.register is None
                    and not b.type.array and b.field.name in domain.fields):
                return False
        return None

    def _mask(self, node: ir.Compare, domain: MaskNone) -> Tri:
        left, right = node.left, node.right
        if not isinstance(right, ir.Const) or not isinstance(right.value, int):
            return None
        if (isinstance(left, ir.Arith) and left.op == "&" and self._is_fixed(left.left)
                and isinstance(left.right, ir.Const) and left.right.value & ~domain.mask == 0):
            # none of the masked bits is set: (field & m) is 0
            return ops.compare(node.op, 0, right.value, False, False)
        if self._is_fixed(left) and node.op == "==" and right.value & domain.mask:
            return False
        return None


def partial_eval(expr: ir.Expr, field: str | Field, value: Any, *, timestamp: int | None = None) -> Tri:
    """``expr`` with ``field`` fixed to ``value``: True, False or None (unknown)."""
    spec = REGISTRY.fields[field] if isinstance(field, str) else field
    return PartialEvaluator(spec, value, timestamp).truth(expr)


def _exprs(rules: Iterable[Any]) -> list[ir.Expr]:
    return [r.ir if hasattr(r, "ir") else r for r in rules]


def is_discarder(rules: Iterable[Any], field: str | Field, value: Any) -> bool:
    """True when no rule (``Rule`` objects or IR) can match with ``field == value``.

    Empty values are never discarders. With no rules at all, every value is one.
    """
    if value is None or value == "":
        return False
    return all(partial_eval(e, field, value) is False for e in _exprs(rules))


def directory_discardable(rules: Iterable[Any], field: str | Field, directory: str) -> bool:
    """True when no path strictly below ``directory`` can match any rule.

    Takes exact paths, globs (``*``, ``**``), and ``.name``/length constraints
    (unknown, hence conservative) into account. ``/`` and relative or empty
    directories are never discardable.
    """
    if not directory.startswith("/") or directory.rstrip("/") == "":
        return False
    domain = PathsBelow(directory.rstrip("/"))
    return all(partial_eval(e, field, domain) is False for e in _exprs(rules))

"""Runtime semantics of SECL operators on Python values.

Shared by the closure backend (:mod:`codegen.pybackend`), constant folding
and partial evaluation, so all three agree. Arrays compare as "any element
matches"; every negated operator is the negation of its positive form
(``process.argv != "x"``: no element equals ``x``).
"""
from __future__ import annotations

import ipaddress
import operator
from typing import Any
from collections.abc import Callable, Iterable

from .patterns import StrMatcher

NETWORKS = (ipaddress.IPv4Network, ipaddress.IPv6Network)
ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
ARITH: dict[str, Callable[[int, int], int]] = {
    "+": operator.add, "-": operator.sub, "&": operator.and_, "|": operator.or_, "^": operator.xor,
}
UNARY: dict[str, Callable[[int], int]] = {"-": operator.neg, "^": operator.invert}


def equals(value: Any, rhs: Any) -> bool:
    """One value against one right-hand element (string, matcher, network...)."""
    if isinstance(rhs, StrMatcher):
        return isinstance(value, str) and rhs.match(value)
    if isinstance(rhs, NETWORKS):
        if isinstance(value, NETWORKS):
            return value.subnet_of(rhs) if value.version == rhs.version else False  # type: ignore[arg-type]
        return value is not None and value.version == rhs.version and value in rhs
    if isinstance(value, bool) is not isinstance(rhs, bool):
        return False
    return bool(value == rhs)


def _items(value: Any, is_array: bool) -> Iterable[Any]:
    return value if is_array else (value,)


def compare(op: str, left: Any, right: Any, left_array: bool, right_array: bool) -> bool:
    """``left OP right`` with SECL semantics (``op`` normalised, see :mod:`codegen.ir`)."""
    if op in ("!=", "not in"):
        return not compare("==" if op == "!=" else "in", left, right, left_array, right_array)
    if op == "allin":
        values = list(_items(left, left_array))
        return bool(values) and all(any(equals(v, r) for r in right) for v in values)
    if op == "in":
        rights = list(right)
        return any(equals(v, r) for v in _items(left, left_array) for r in rights)
    if op == "==":
        rights = list(_items(right, right_array))
        return any(equals(v, r) for v in _items(left, left_array) for r in rights)
    fn = ORDERING[op]
    rights = list(_items(right, right_array))
    return any(
        fn(v, r) for v in _items(left, left_array) for r in rights
        if isinstance(v, int) and isinstance(r, int)
    )


def arith(op: str, left: int, right: int) -> int:
    return ARITH[op](left, right)

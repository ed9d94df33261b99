"""Python backend: IR -> closures, built once per rule.

Each node becomes a function ``fn(event) -> value`` over a
:class:`agent.evaluator.event.DocumentEvent`. Fields are read lazily through the
event's cache (resolved only when read, at most once per event). Operands
of ``&&``/``||`` run cheapest first, by weight: plain field compare <
array membership < resolver-backed field < regex < pattern arrays <
iterators; evaluation is pure, so reordering never changes a result.
"""
from __future__ import annotations

import functools
import operator
from typing import Any
from collections.abc import Callable

from . import ir, ops
from agent.evaluator.event import MISSING, DocumentEvent, getter, make_element_getter
from .limits import MAX_ITERATOR_ELEMENTS
from .ir import Kind
from .patterns import StrMatcher, glob_error, literal, make_glob, make_pattern

Fn = Callable[[DocumentEvent], Any]

W_PLAIN = 1
W_ARRAY = 2
W_RESOLVER = 3
W_REGEX = 4
W_PATTERN_ARRAY = 5
W_ITERATOR = 6
W_HASH = 8

_ZERO_BY_KIND = {Kind.INT: 0, Kind.STR: "", Kind.BOOL: False, Kind.IP: None, Kind.ANY: None}
_CMP = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def weight(expr: ir.Expr) -> int:
    """Cost estimate used to order ``&&``/``||`` operands."""
    if isinstance(expr, ir.Exists):
        return W_ITERATOR + weight(expr.body)
    if isinstance(expr, ir.FieldRef):
        f = expr.field
        if f.resolver == "hashes":
            return W_HASH  # reads the file
        if f.iterator:
            return W_ITERATOR
        if f.resolver or f.fallback:
            return W_RESOLVER
        return W_ARRAY if f.array else W_PLAIN
    if isinstance(expr, ir.Const):
        return _const_weight(expr.value)
    if isinstance(expr, (ir.VarRef, ir.Template)):
        return W_RESOLVER
    if isinstance(expr, ir.Logic):
        return sum(weight(o) for o in expr.operands)
    if isinstance(expr, ir.Compare):
        return max(weight(expr.left), weight(expr.right), W_ARRAY if expr.op in ("in", "not in") else W_PLAIN)
    return max((weight(c) for c in ir.children(expr)), default=0)


def _const_weight(value: Any) -> int:
    if isinstance(value, StrMatcher):
        return W_REGEX if value.kind == "regex" else W_RESOLVER
    if isinstance(value, tuple):
        if any(isinstance(v, StrMatcher) for v in value):
            return W_PATTERN_ARRAY
        return W_ARRAY
    return 0


def compile_expr(expr: ir.Expr) -> Fn:
    """The closure evaluating ``expr`` on a :class:`DocumentEvent`."""
    return _compile(expr)


def _compile(expr: ir.Expr) -> Fn:
    method = _COMPILERS[type(expr)]
    return method(expr)


def _const(expr: ir.Const) -> Fn:
    value = expr.value
    return lambda ev: value


def field_reader(expr: ir.FieldRef) -> Fn:
    f = expr.field
    if expr.register is not None:  # one element: not cached (the element changes while the rule runs)
        element = make_element_getter(f)
        return lambda ev: element(ev.doc, ev.register)
    if f.name == "event.timestamp":
        return lambda ev: ev.timestamp
    name, get = f.name, getter(f)

    def read(ev: DocumentEvent) -> Any:
        cache = ev.cache
        value = cache.get(name, MISSING)
        if value is MISSING:
            value = cache[name] = get(ev.doc)
        return value
    return read


def _var(expr: ir.VarRef) -> Fn:
    name = expr.name
    zero: Any = [] if expr.type.array else _ZERO_BY_KIND[expr.type.kind]

    def read(ev: DocumentEvent) -> Any:
        store = ev.variables
        if store is None:
            return zero
        value = store.lookup(name, ev)
        return zero if value is MISSING else value
    return read


def _template(expr: ir.Template) -> Fn:
    parts: list[Fn] = [_literal(p) if isinstance(p, str) else _compile(p) for p in expr.parts]

    def render(ev: DocumentEvent) -> str:
        return "".join(_text(fn(ev)) for fn in parts)
    if not expr.matcher:
        return render
    # a pattern's own text is wildcards; what the values interpolated into it hold is literal
    marked: list[tuple[bool, Fn]] = [(isinstance(p, str), fn) for p, fn in zip(expr.parts, parts)]
    make = _matcher(expr.matcher)

    def render_pattern(ev: DocumentEvent) -> str:
        return "".join(_text(fn(ev)) if own else literal(_text(fn(ev))) for own, fn in marked)
    return lambda ev: make(render_pattern(ev))


_NEVER = StrMatcher("pattern", "", lambda s: False)


def _matcher(kind: str) -> Callable[[str], StrMatcher]:
    """Text -> its pattern or glob, the last few cached (a field's value
    repeats from event to event). A text that is no valid glob matches nothing."""
    @functools.lru_cache(maxsize=256)
    def make(text: str) -> StrMatcher:
        if kind == "glob":
            return _NEVER if glob_error(text) is not None else make_glob(text)
        return make_pattern(text)
    return make


def _literal(text: str) -> Fn:
    return lambda ev: text


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _since(expr: ir.Since) -> Fn:
    operand = _compile(expr.operand)
    if expr.operand.type.array:
        return lambda ev: [ev.timestamp - v for v in operand(ev)]
    return lambda ev: ev.timestamp - operand(ev)


def _exists(expr: ir.Exists) -> Fn:
    body, count = _compile(expr.body), field_reader(expr.count)

    def exists(ev: DocumentEvent) -> bool:
        outer = ev.register
        try:
            for i in range(min(count(ev), MAX_ITERATOR_ELEMENTS)):
                ev.register = i
                if body(ev):
                    return True
            return False
        finally:
            ev.register = outer
    return exists


def _not(expr: ir.Not) -> Fn:
    operand = _compile(expr.operand)
    return lambda ev: not operand(ev)


def _logic(expr: ir.Logic) -> Fn:
    ordered = sorted(expr.operands, key=weight)  # stable: source order among equals
    fns = [_compile(o) for o in ordered]
    if len(fns) > 8:  # long chains: a loop, not nested closures
        run = tuple(fns)
        if expr.op == "&&":
            return lambda ev: all(f(ev) for f in run)
        return lambda ev: any(f(ev) for f in run)
    fn = fns[-1]
    for head in reversed(fns[:-1]):
        fn = _and(head, fn) if expr.op == "&&" else _or(head, fn)
    return fn


# Boolean closures return bools (comparisons, coerced fields), so `and`/`or` need no bool().
def _and(a: Fn, b: Fn) -> Fn:
    return lambda ev: a(ev) and b(ev)


def _or(a: Fn, b: Fn) -> Fn:
    return lambda ev: a(ev) or b(ev)


def _arith(expr: ir.Arith) -> Fn:
    left, right, fn = _compile(expr.left), _compile(expr.right), ops.ARITH[expr.op]
    if isinstance(expr.right, ir.Const) and expr.op == "&":
        mask = expr.right.value
        return lambda ev: left(ev) & mask
    return lambda ev: fn(left(ev), right(ev))


def _unary(expr: ir.Unary) -> Fn:
    operand, fn = _compile(expr.operand), ops.UNARY[expr.op]
    return lambda ev: fn(operand(ev))


def _compare(expr: ir.Compare) -> Fn:
    op = expr.op
    if op in ("!=", "not in"):
        positive = _positive(ir.Compare(ir.NEGATION[op], expr.left, expr.right, expr.span))
        return lambda ev: not positive(ev)
    return _positive(expr)


def _positive(expr: ir.Compare) -> Fn:
    op, left, right = expr.op, _compile(expr.left), expr.right
    many = expr.left.type.array
    if isinstance(right, ir.Const):
        fast = _against_const(op, left, many, right.value, right.type)
        if fast is not None:
            return fast
    rfn, rmany = _compile(right), right.type.array
    return lambda ev: ops.compare(op, left(ev), rfn(ev), many, rmany)


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, StrMatcher)


def _against_const(op: str, left: Fn, many: bool, value: Any, rtype: ir.Type) -> Fn | None:
    """Specialised closures for a comparison with a constant, or None."""
    if op == "==" and not rtype.array:
        if isinstance(value, StrMatcher):
            match = value.match
            if many:
                return lambda ev: any(match(v) for v in left(ev))
            return lambda ev: match(left(ev))
        if _plain(value):
            if many:
                return lambda ev: value in left(ev)
            return lambda ev: left(ev) == value
        return None
    if op == "in" and rtype.array:
        exact = frozenset(v for v in value if _plain(v))
        matchers = tuple(v.match for v in value if isinstance(v, StrMatcher))
        if len(exact) + len(matchers) != len(value):
            return None  # networks: generic path
        if not matchers:
            if many:
                return lambda ev: not exact.isdisjoint(left(ev))
            return lambda ev: left(ev) in exact

        def one(v: Any) -> bool:
            return v in exact or any(m(v) for m in matchers)
        if many:
            return lambda ev: any(one(v) for v in left(ev))
        return lambda ev: one(left(ev))
    if op in _CMP and not rtype.array and isinstance(value, int):
        cmp = _CMP[op]
        if many:
            return lambda ev: any(cmp(v, value) for v in left(ev))
        return lambda ev: cmp(left(ev), value)
    return None


_COMPILERS: dict[type, Callable[[Any], Fn]] = {
    ir.Const: _const, ir.FieldRef: field_reader, ir.VarRef: _var, ir.Template: _template,
    ir.Since: _since, ir.Not: _not, ir.Logic: _logic, ir.Compare: _compare,
    ir.Arith: _arith, ir.Unary: _unary, ir.Exists: _exists,
}

__all__ = ["compile_expr", "weight", "field_reader"]

"""Semantic pass: AST -> typed IR.

Resolves names (fields from the registry, macros, constants, variables),
type-checks, folds constants, validates patterns, globs and regexes (no
regex on ``.path`` fields), turns time fields compared with durations into
``event.timestamp - field``, and infers the rule's event type (exactly one).
Every problem goes to the :class:`Diagnostics`; analysis goes on after an
error so all of them are reported (a failed sub-tree is ``None`` and does
not cause further messages).

Before / after, for ``open.file.path =~ "/etc/*" && process.created_at < 5s``::

    Binary(&&)                         Logic(&&)
      Binary(=~) path "/etc/*"    ->     Compare(==, FieldRef path, Const glob"/etc/*")
      Binary(<) created_at 5s            Compare(<, Since(FieldRef created_at), Const 5e9)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from collections.abc import Callable, Mapping, Sequence

from . import ast, ir, limits, ops
from .eventtypes import produced
from .limits import Budget
from .constants import lookup as lookup_constant
from .constants import lookup_string
from .errors import Diagnostics, Source, Span
from .fields import ITER, REGISTRY, Field, FieldType, Registry
from .ir import Kind, Type
from .patterns import StrMatcher, as_glob, glob_error, make_pattern, make_regex

BUILTIN_VARIABLES = {"process.pid": "process.pid"}
# Variables computed at each read, and their kinds (agent/evaluator/variables.py computes them).
VARIABLE_BUILTINS: dict[str, Kind] = {"builtins.uuid4": Kind.STR}


@dataclass(frozen=True, slots=True)
class Analysis:
    """A checked expression: its IR, event type (None when it has none) and fields.

    ``size`` is the expression's size with its macros expanded (syntax-tree
    nodes plus array elements): what each use of it costs downstream.
    """

    expr: ir.Expr
    event_type: str | None
    event_types: tuple[str, ...]  # every event type its fields belong to, in order of use
    size: int = 1


MacroProvider = Callable[[str], "Analysis | None"]


class Scope:
    """What names mean besides fields and constants: macros and user variables."""

    def __init__(self, macros: Mapping[str, MacroProvider] | None = None,
                 variables: Mapping[str, Type] | None = None, budget: Budget | None = None) -> None:
        self.macros: Mapping[str, MacroProvider] = macros or {}
        self.variables: Mapping[str, Type] = variables or {}
        self.budget = budget if budget is not None else Budget()


class _OverBudget(Exception):
    """The load's expressions are too large once macros are expanded (reported)."""


_ORDERING = frozenset({"<", "<=", ">", ">="})
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}|%\{([^}]*)\}")  # ${variable}, %{field}
_SUBSCRIPT = re.compile(r"\[([A-Za-z_][A-Za-z0-9_]*)\]")


_PREFIXES: dict[int, tuple[Registry, frozenset[str]]] = {}


def _iterator_prefixes(registry: Registry) -> frozenset[str]:
    """Names ``[_]`` may follow (computed once per registry: every expression needs them)."""
    cached = _PREFIXES.get(id(registry))
    if cached is not None and cached[0] is registry:
        return cached[1]
    out = set()
    for f in registry.fields.values():
        if f.iterator:
            out.add(".".join(f.name.split(".")[: f.path.index(ITER)]))
    prefixes = frozenset(out)
    _PREFIXES[id(registry)] = (registry, prefixes)
    return prefixes


_NAMESPACES: dict[int, tuple[Registry, frozenset[str]]] = {}

# Diagnostic codes of the problems that make a rule unloadable (codegen.policy counts them).
UNSUPPORTED_TYPE = "unsupported_type"
UNKNOWN_FIELD = "unknown_field"
UNSUPPORTED = "unsupported"  # a construct this agent does not implement


def _namespaces(registry: Registry) -> frozenset[str]:
    """First segments of the registry's fields (``open``, ``process``...), once per registry."""
    cached = _NAMESPACES.get(id(registry))
    if cached is not None and cached[0] is registry:
        return cached[1]
    names = frozenset(f.name.split(".")[0] for f in registry.fields.values())
    _NAMESPACES[id(registry)] = (registry, names)
    return names


class Analyzer:
    def __init__(self, source: Source, diags: Diagnostics, registry: Registry, scope: Scope) -> None:
        self.source = source
        self.diags = diags
        self.registry = registry
        self.scope = scope
        self.event_types: dict[str, int] = {}
        self.start_errors = diags.error_count
        self.iterators = _iterator_prefixes(registry)
        self.size = 0
        self.registers: dict[str, str] = {}  # named iterators used (`[A]`) -> their iterator

    # -- reporting ------------------------------------------------------------
    def error(self, offset: int, message: str, code: str = "") -> None:
        self.diags.error(self.source, offset, message, code)

    def _record_event_type(self, event_type: str | None, offset: int) -> None:
        if event_type is not None:
            self.event_types.setdefault(event_type, offset)

    def charge(self, cost: int, offset: int) -> None:
        """Count ``cost`` nodes against the load's budget; stop the analysis past it."""
        self.size += cost
        budget = self.scope.budget
        budget.nodes -= cost
        if budget.nodes < 0:
            if budget.report():
                self.error(offset, f"the policy's expressions are too large once macros are expanded (more than "
                                   f"{limits.MAX_EXPANDED_NODES:,} nodes in all; docs/secl.md \"Limits\"): "
                                   f"a macro used too often?")
            raise _OverBudget()

    # -- dispatch -------------------------------------------------------------
    def visit(self, node: ast.Node) -> ir.Expr | None:
        self.charge(1, node.span.start)
        method = getattr(self, "visit_" + type(node).__name__)
        return method(node)

    def visit_BoolLit(self, node: ast.BoolLit) -> ir.Expr:
        return ir.Const(node.value, ir.BOOL, node.span)

    def visit_IntLit(self, node: ast.IntLit) -> ir.Expr:
        return ir.Const(node.value, ir.INT, node.span)

    def visit_DurationLit(self, node: ast.DurationLit) -> ir.Expr:
        return ir.Const(node.value, Type(Kind.INT, duration=True), node.span)

    def visit_IPLit(self, node: ast.IPLit) -> ir.Expr:
        return ir.Const(node.value, Type(Kind.IP), node.span)

    def visit_PatternLit(self, node: ast.PatternLit) -> ir.Expr | None:
        if "${" in node.value or "%{" in node.value:
            template = self.interpolate(node)
            return None if template is None else replace(template, matcher="pattern")
        return ir.Const(make_pattern(node.value), ir.STR, node.span)

    def visit_RegexLit(self, node: ast.RegexLit) -> ir.Expr | None:
        try:
            return ir.Const(make_regex(node.value), ir.STR, node.span)
        except re.error as exc:
            pos = exc.pos if exc.pos is not None and exc.pos < len(node.offsets) else None
            self.error(node.offsets[pos] if pos is not None else node.span.start,
                       f"invalid regular expression: {exc.msg}")
            return None

    def visit_StringLit(self, node: ast.StringLit) -> ir.Expr | None:
        if "${" not in node.value and "%{" not in node.value:
            return ir.Const(node.value, ir.STR, node.span)
        return self.interpolate(node)

    def interpolate(self, node: ast.StringLit | ast.PatternLit) -> ir.Template | None:
        """``"..${variable}.."`` and ``"..%{field}.."``: the value's text at each evaluation."""
        parts: list[str | ir.Expr] = []
        text, i, ok = node.value, 0, True
        for m in _INTERPOLATION.finditer(text):
            if m.start() > i:
                parts.append(text[i : m.start()])
            at = node.offsets[m.start()]
            value: ir.Expr | None
            if m.group(1) is not None:
                value = self.variable(m.group(1), at, node.span)
                shown = f"variable '${{{m.group(1)}}}'"
            else:
                name = m.group(2).strip()
                end = node.offsets[m.end() - 1] + 1 if m.end() - 1 < len(node.offsets) else node.span.end
                value = self.field(name, Span(at + 2, end)) if name else None
                if not name:
                    self.error(at, "empty field interpolation '%{}': write %{process.comm}")
                shown = f"field '%{{{name}}}'"
                if isinstance(value, ir.FieldRef) and value.register is not None:
                    self.error(at, f"a named iterator cannot be interpolated in a string ({shown})")
                    value = None
            if value is None:
                ok = False
            elif value.type.array:
                self.error(at, f"array {shown} cannot be used inside a string")
                ok = False
            else:
                parts.append(value)
            i = m.end()
        if i < len(text):
            parts.append(text[i:])
        return ir.Template(tuple(parts), node.span) if ok else None

    def visit_ArrayLit(self, node: ast.ArrayLit) -> ir.Expr | None:
        values: list[Any] = []
        kind: Kind | None = None
        ok = True
        self.charge(len(node.items), node.span.start)
        for item in node.items:
            if type(item) is ast.StringLit and "${" not in item.value:  # the common case, without a visit
                if kind is Kind.STR or kind is None:
                    kind = Kind.STR
                    values.append(item.value)
                    continue
            value = self.visit(item)
            if value is None:
                ok = False
                continue
            if not isinstance(value, ir.Const) or value.type.array:
                self.error(item.span.start, "array elements must be constant values")
                ok = False
                continue
            if kind is not None and value.type.kind is not kind:
                self.error(item.span.start, f"mixed types in array: {value.type.kind.value} after {kind.value}")
                ok = False
                continue
            kind = value.type.kind
            values.append(value.value)
        if not ok:
            return None
        return ir.Const(tuple(values), Type(kind or Kind.ANY, array=True), node.span)

    def visit_Ident(self, node: ast.Ident) -> ir.Expr | None:
        name = node.name
        if name in self.scope.macros:
            result = self.scope.macros[name](name)
            if result is None and self.scope.budget.exhausted:
                raise _OverBudget()
            if result is None:
                self.error(node.span.start, f"macro '{name}' is invalid (see its errors)", code="macro:" + name)
                return None
            self.charge(result.size, node.span.start)
            for event_type in result.event_types:
                self._record_event_type(event_type, node.span.start)
            return result.expr
        if "." in name or "[" in name or name in self.registry:
            return self.field(name, node.span)
        value = lookup_constant(name)
        if value is not None:
            return ir.Const(value, ir.INT, node.span)
        text = lookup_string(name)
        if text is not None:
            return ir.Const(text, ir.STR, node.span)
        self.error(node.span.start, f"unknown identifier '{name}' (not a field, macro or constant)")
        return None

    def field(self, name: str, span: Span, via_variable: bool = False) -> ir.Expr | None:
        register: str | None = None
        plain = name
        subscripts = list(_SUBSCRIPT.finditer(name))
        if subscripts:
            first = subscripts[0]
            head, label = name[: first.start()], first.group(1)
            if head not in self.iterators or len(subscripts) > 1:
                at = subscripts[1] if head in self.iterators else first
                self.error(span.start + at.start(), f"'[{at.group(1)}]' is only allowed after an iterator "
                                                    f"({', '.join(sorted(self.iterators))})")
                return None
            plain = name[: first.start()] + name[first.end():]
            if label != "_":
                register = label
                if not self.register(label, head, span.start + first.start()):
                    return None
        spec = self.registry.get(plain)
        if spec is None:
            head = plain.split(".")[0]
            if head not in _namespaces(self.registry) or not self.registry.produces(head):
                self.error(span.start, f"unknown field '{plain}': this agent does not produce '{head}' events",
                           code=UNSUPPORTED_TYPE)
                return None
            hint = self.registry.suggest(plain)
            self.error(span.start, f"unknown field '{plain}'" + (f", did you mean '{hint}'?" if hint else ""),
                       code=UNKNOWN_FIELD)
            return None
        if register is not None and not spec.iterator:
            self.error(span.start + name.index("["), f"'{plain}' is not a field of each element of the iterator: "
                                                     f"'[{register}]' cannot name an element here")
            return None
        if spec.unavailable:
            self.diags.warning(self.source, span.start, f"'{plain}' is always empty on this agent: {spec.unavailable}")
        self._record_event_type(spec.event_type, span.start)
        return ir.FieldRef(spec, span, via_variable, register)

    def register(self, label: str, head: str, offset: int) -> bool:
        """A named iterator ``head[label]``: one per rule, on one iterator (the reference agent's rule)."""
        known = self.registers.setdefault(label, head)
        if known != head:
            self.error(offset, f"iterator variable '{label}' already names an element of '{known}', not of '{head}'")
            return False
        if len(self.registers) > 1:
            first = next(iter(self.registers))
            self.error(offset, f"a second named iterator '[{label}]' (after '[{first}]'): a rule has at most one, "
                               f"as in the reference agent; use '[{first}]' or '[_]'", code=UNSUPPORTED)
            return False
        return True

    def variable(self, name: str, offset: int, span: Span) -> ir.Expr | None:
        if name in BUILTIN_VARIABLES:
            return self.field(BUILTIN_VARIABLES[name], span, via_variable=True)
        if name in VARIABLE_BUILTINS:
            return ir.VarRef(name, Type(VARIABLE_BUILTINS[name]), span)
        var_type = self.scope.variables.get(name)
        if var_type is None:
            self.error(offset, f"unknown variable '${{{name}}}'")
            return None
        return ir.VarRef(name, var_type, span)

    def visit_Variable(self, node: ast.Variable) -> ir.Expr | None:
        return self.variable(node.name, node.span.start, node.span)

    # -- operators ------------------------------------------------------------
    def visit_Unary(self, node: ast.Unary) -> ir.Expr | None:
        operand = self.visit(node.operand)
        if operand is None:
            return None
        t = operand.type
        if node.op == "!":
            operand = self.condition(operand, node.operand, " ('!' applies to the operand right after it: write !(a == b))")
            if operand is None:
                return None
            if isinstance(operand, ir.Const):
                return ir.Const(not operand.value, ir.BOOL, node.span)
            if isinstance(operand, ir.Not):
                return operand.operand
            return ir.Not(operand, node.span)
        if t.kind is not Kind.INT or t.array:
            self.error(node.span.start, f"operator '{node.op}' needs an integer, got {t}")
            return None
        if isinstance(operand, ir.Const):
            return ir.Const(ops.UNARY[node.op](operand.value), Type(Kind.INT, duration=t.duration), node.span)
        return ir.Unary(node.op, operand, node.span)

    def condition(self, expr: ir.Expr, node: ast.Node, hint: str = "") -> ir.Expr | None:
        """``expr`` as a boolean operand (a bool array means "any is true")."""
        t = expr.type
        if t.kind is not Kind.BOOL:
            self.error(node.span.start, f"expected a boolean, got {t}{hint}")
            return None
        if t.array:
            return ir.Compare("==", expr, ir.Const(True, ir.BOOL, node.span), node.span)
        return expr

    def visit_Binary(self, node: ast.Binary) -> ir.Expr | None:
        if node.op in ast.LOGICAL_OPS:
            return self.logical(node)
        left, right = self.visit(node.left), self.visit(node.right)
        if left is None or right is None:
            return None
        if node.op in ast.ARITHMETIC_OPS:
            return self.arithmetic(node, left, right)
        return self.comparison(node, left, right)

    def logical(self, node: ast.Binary) -> ir.Expr | None:
        # A chain of one operator (`a || b || c ...`) is flattened without recursion.
        chain: list[ast.Node] = []
        stack: list[ast.Node] = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Binary) and n.op == node.op:
                stack += (n.right, n.left)
            else:
                chain.append(n)
        if node.op == "||":
            for sub in chain:
                if isinstance(sub, ast.Binary) and sub.op == "&&" and not sub.parens:
                    self.diags.warning(self.source, sub.op_span.start,
                                       "'&&' and '||' mixed without parentheses; the reference agent "
                                       "groups them differently: add parentheses")
        visited = [self.visit(sub) for sub in chain]
        checked = [self.condition(v, sub) if v is not None else None for v, sub in zip(visited, chain)]
        if any(c is None for c in checked):
            return None
        absorbing = node.op == "||"  # the value that decides: true for ||, false for &&
        operands: list[ir.Expr] = []
        for side in checked:
            assert side is not None
            if isinstance(side, ir.Const):
                if side.value == absorbing:
                    return ir.Const(absorbing, ir.BOOL, node.span)
                continue  # the neutral value
            if isinstance(side, ir.Logic) and side.op == node.op:
                operands.extend(side.operands)
            else:
                operands.append(side)
        if not operands:
            return ir.Const(not absorbing, ir.BOOL, node.span)
        if len(operands) == 1:
            return operands[0]
        return ir.Logic(node.op, tuple(operands), node.span)

    def arithmetic(self, node: ast.Binary, left: ir.Expr, right: ir.Expr) -> ir.Expr | None:
        lt, rt = left.type, right.type
        for side, t in ((node.left, lt), (node.right, rt)):
            if t.kind is not Kind.INT or t.array:
                self.error(side.span.start, f"operator '{node.op}' needs integers, got {t}")
                return None
        if node.op in "&|^":  # a mask: within the field's width (open.flags masks fill a u64 kernel map)
            for target, value, value_node in ((left, right, node.right), (right, left, node.left)):
                if isinstance(target, ir.FieldRef) and not self.in_range(target, value, value_node):
                    return None
        duration = node.op in "+-" and (lt.duration or rt.duration)
        if isinstance(left, ir.Const) and isinstance(right, ir.Const):
            return ir.Const(ops.arith(node.op, left.value, right.value), Type(Kind.INT, duration=duration), node.span)
        return ir.Arith(node.op, left, right, node.span, Type(Kind.INT, duration=duration))

    def comparison(self, node: ast.Binary, left: ir.Expr, right: ir.Expr) -> ir.Expr | None:
        op = node.op
        at = node.op_span.start
        left_node, right_node = node.left, node.right
        if op in ir.FLIPPED and _is_value(left) and not _is_value(right):
            left, right, left_node, right_node = right, left, right_node, left_node
            op = ir.FLIPPED[op]
        lt, rt = left.type, right.type
        if lt.time and rt.duration and not isinstance(left, ir.Const):
            left = ir.Since(left, left.span)
            lt = left.type
        negate = False
        if op in ("=~", "!~") and isinstance(right, ir.Template) and lt.kind is Kind.STR:
            negate, op = op == "!~", "=="
            right = replace(right, matcher="glob" if _is_glob(left) else "pattern")
        elif op in ("=~", "!~"):
            negate = op == "!~"
            if lt.kind is not Kind.STR or rt.kind is not Kind.STR or rt.array or not isinstance(right, ir.Const):
                self.error(at, f"operator '{op}' compares a string with a pattern, got {lt} and {rt}")
                return None
            checked = self.strings(left, right, right_node, to_pattern=True)
            if checked is None:
                return None
            right = checked
            op = "=="
        elif op in ("==", "!="):
            negate = op == "!="
            op = "=="
            if rt.array and isinstance(right, ir.Const):
                self.error(right_node.span.start, "use 'in' to compare with an array")
                return None
            if not _compatible(lt, rt):
                self.error(at, f"cannot compare {lt} with {rt}")
                return None
            if isinstance(right, ir.Const) and rt.kind is Kind.STR:
                checked = self.strings(left, right, right_node, to_pattern=False)
                if checked is None:
                    return None
                right = checked
            elif isinstance(right, ir.Template) and right.matcher and _is_glob(left):
                right = replace(right, matcher="glob")  # ~"...%{field}..." on a path field
        elif op in _ORDERING:
            if lt.kind is not Kind.INT or rt.kind is not Kind.INT:
                self.error(at, f"operator '{op}' compares integers, got {lt} and {rt}")
                return None
        elif op in ("in", "not in"):
            negate = op == "not in"
            op = "in"
            if not rt.array and rt.kind is Kind.IP and isinstance(right, ir.Const):
                # `connect.addr.ip in 10.0.0.0/8`: one CIDR is a one-network array
                right = ir.Const((right.value,), Type(Kind.IP, array=True), right.span)
                rt = right.type
            if not rt.array:
                self.error(right_node.span.start, f"'{node.op}' needs an array on the right, got {rt}")
                return None
            if not _compatible(lt, rt):
                self.error(at, f"cannot look for {lt} in {rt}")
                return None
            if isinstance(right, ir.Const) and rt.kind is Kind.STR:
                checked = self.strings(left, right, right_node, to_pattern=False)
                if checked is None:
                    return None
                right = checked
        elif op == "allin":
            if lt.kind is not Kind.IP or not rt.array or rt.kind not in (Kind.IP, Kind.ANY):
                self.error(at, f"'allin' checks IP addresses against an array of CIDRs, got {lt} and {rt}")
                return None
        if op != "allin" and not self.in_range(left, right, right_node):
            return None
        result: ir.Expr
        if isinstance(left, ir.Const) and isinstance(right, ir.Const):
            value = ops.compare(op, left.value, right.value, left.type.array, right.type.array)
            result = ir.Const(value, ir.BOOL, node.span)
        else:
            result = ir.Compare(op, left, right, node.span)
        if negate:
            if isinstance(result, ir.Const):
                return ir.Const(not result.value, ir.BOOL, node.span)
            return ir.Compare(ir.NEGATION[op], left, right, node.span)
        return result

    def in_range(self, target: ir.Expr, value: ir.Expr, node: ast.Node) -> bool:
        """Integer constants compared with (or masking) an integer field fit
        the field's values (:func:`codegen.limits.field_range`); an error
        at the offending value otherwise."""
        field = _int_field(target)
        if field is None or not isinstance(value, ir.Const) or value.type.kind is not Kind.INT:
            return True
        rng = limits.field_range(field.name)
        items = value.value if value.type.array else (value.value,)
        nodes = node.items if isinstance(node, ast.ArrayLit) and len(node.items) == len(items) else None
        for i, v in enumerate(items):
            if isinstance(v, int) and not isinstance(v, bool) and v not in rng:
                at = nodes[i].span.start if nodes is not None else node.span.start
                source = f" (in macro '{node.name}')" if isinstance(node, ast.Ident) else ""
                self.error(at, f"{_short_int(v)}{source} is out of range for {field.name} ({rng.describe()})")
                return False
        return True

    def strings(self, left: ir.Expr, right: ir.Const, node: ast.Node, to_pattern: bool) -> ir.Const | None:
        """Right-hand strings for ``left``: globs on path fields, no regex there."""
        glob = isinstance(left, ir.FieldRef) and left.field.glob
        items = right.value if right.type.array else (right.value,)
        nodes = node.items if isinstance(node, ast.ArrayLit) else (node,) * len(items)
        out: list[Any] = []
        ok = True
        for value, item_node in zip(items, nodes):
            if isinstance(value, str) and to_pattern:
                value = make_pattern(value)
            if isinstance(value, StrMatcher) and glob:
                if value.kind == "regex":
                    name = left.field.name  # type: ignore[union-attr]
                    self.error(item_node.span.start, f"regular expressions are not allowed on path field '{name}'; use a glob")
                    ok = False
                    continue
                problem = glob_error(value.text)
                if problem is not None:
                    self.error(_offset_in(item_node, problem[0]), f"invalid glob: {problem[1]}")
                    ok = False
                    continue
                value = as_glob(value)
            out.append(value)
        if not ok:
            return None
        return ir.Const(tuple(out) if right.type.array else out[0], right.type, right.span)

    # -- entry ------------------------------------------------------------------
    def event_type(self, require: bool) -> tuple[str | None, bool]:
        types = sorted(self.event_types.items(), key=lambda kv: kv[1])
        if len(types) > 1:
            first, (second, offset) = types[0][0], types[1]
            self.error(offset, f"the expression uses fields of two event types, '{first}' and '{second}'; a rule applies to exactly one")
            return None, False
        if not types:
            if require and self.diags.error_count == self.start_errors:
                self.error(0, "cannot infer the event type: use at least one field of an event type (e.g. open.file.path)")
                return None, False
            return None, True
        name, offset = types[0]
        if require and not produced(name):
            self.error(offset, f"event type '{name}' is not produced by this agent: rules on it cannot fire "
                               f"(docs/fields.md lists the types it produces)", code=UNSUPPORTED_TYPE)
            return None, False
        return name, True


def _int_field(expr: ir.Expr) -> Field | None:
    """The integer field whose values ``expr`` takes: the field itself, or
    the field masked with a constant (``open.flags & O_RDWR``)."""
    if isinstance(expr, ir.Arith) and expr.op == "&" and isinstance(expr.right, ir.Const):
        expr = expr.left
    if isinstance(expr, ir.FieldRef) and expr.field.type is FieldType.INT:
        return expr.field
    return None


def _short_int(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...{text[-6:]} ({len(text)} digits)"


def _offset_in(node: ast.Node, index: int) -> int:
    offsets = getattr(node, "offsets", ())
    return offsets[index] if index < len(offsets) else node.span.start


def _is_glob(expr: ir.Expr) -> bool:
    return isinstance(expr, ir.FieldRef) and expr.field.glob


def _is_value(expr: ir.Expr) -> bool:
    return isinstance(expr, (ir.Const, ir.Template))


def _compatible(a: Type, b: Type) -> bool:
    return a.kind is b.kind or Kind.ANY in (a.kind, b.kind)


def analyze(
    node: ast.Node,
    source: Source,
    diags: Diagnostics,
    *,
    registry: Registry = REGISTRY,
    scope: Scope | None = None,
    require_event_type: bool = True,
    expect: Sequence[Kind] | None = (Kind.BOOL,),
    iterators: str = "bind",
) -> Analysis | None:
    """Check ``node``; errors go to ``diags``; None when there were any.
    ``iterators``: what a named iterator (``[A]``) becomes: ``bind`` (a rule
    or a filter: tried on each element), ``keep`` (a macro: bound by the
    rule using it), ``refuse`` (a value: an error)."""
    analyzer = Analyzer(source, diags, registry, scope or Scope())
    count = diags.error_count
    try:
        expr = analyzer.visit(node)
    except _OverBudget:
        return None
    if expr is not None and expect is not None:
        t = expr.type
        if t.kind not in expect or (t.array and Kind.BOOL in expect and len(expect) == 1):
            if t.kind is Kind.BOOL and t.array:
                expr = analyzer.condition(expr, node)
            else:
                analyzer.error(node.span.start, f"the expression must be a boolean, got {t}")
                expr = None
    if expr is not None and iterators != "keep":
        expr = _bind_iterators(analyzer, expr, refuse=iterators == "refuse")
    event_type, ok = analyzer.event_type(require_event_type)
    if expr is None or not ok or diags.error_count > count:
        return None
    return Analysis(expr, event_type, tuple(analyzer.event_types), analyzer.size)


def _bind_iterators(analyzer: Analyzer, expr: ir.Expr, refuse: bool) -> ir.Expr | None:
    """Wrap a rule using a named iterator in :class:`ir.Exists`: the whole
    expression holds for one element (the reference agent's semantics: every
    clause naming ``[A]`` reads the same element; the rule is tried on each)."""
    refs = [n for n in ir.walk(expr) if isinstance(n, ir.FieldRef) and n.register is not None]
    if not refs:
        return expr
    if refuse:
        analyzer.error(refs[0].span.start, f"a named iterator ('[{refs[0].register}]') is only allowed in a "
                                           f"rule's expression, a macro or a filter")
        return None
    names = {r.register: r for r in refs}
    heads = {ir.iterated(r.field) for r in refs}
    if len(names) > 1 or len(heads) > 1:  # through macros (a rule's own uses are checked as they are read)
        analyzer.error(0, f"the rule uses named iterators {', '.join(sorted(f'[{n}]' for n in names))} "
                          f"(with its macros): a rule has at most one, on one iterator", code=UNSUPPORTED)
        return None
    (name, ref), = names.items()
    length = analyzer.registry.get(ir.iterated(ref.field) + ".length")
    if length is None:
        analyzer.error(ref.span.start, f"'{ir.iterated(ref.field)}' has no length: it cannot be iterated by name")
        return None
    return ir.Exists(str(name), ir.FieldRef(length, ref.span), expr, expr.span)

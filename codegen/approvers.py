"""Approvers: per event type, values that certainly match at least one rule.

For the kernel filter compiler (docs/secl.md "In-kernel filters",
docs/reference-agent.md). For every rule of an event type and every approvable
field (registry ``approver``), the rule *offers* the constant values it
compares the field with — or a reason why it cannot: negations, regexes,
field-to-field compares, variables, globs whose basename has ``*``,
patterns on name fields, a field OR-ed with another field. An offer is
checked by partial evaluation: with the field outside the offered values
the rule must be certainly false. Path fields offer basenames, and, as a
second kind, the literal directory prefixes of their absolute paths and
globs (``/etc/**`` -> ``/etc/``: the offer a glob whose basename has ``*``
still makes); bit fields offer a mask. Each rule picks its best offer
(highest weight); if any rule of the type has none, the type gets no
approvers (everything is sent to user space).
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable, Mapping

from . import ir
from .fields import REGISTRY, ApproverKind, Field, Registry
from .fieldspec import PREFIX, Approver
from .partial import BasenameNotIn, BasenameNotOf, MaskNone, PrefixNotIn, ValueNotIn, partial_eval
from .patterns import StrMatcher, glob_basename, literal_dir_prefix


@dataclass(frozen=True)
class Offer:
    """What one rule offers on one field: values (or a mask), or why not."""

    field: str
    kind: ApproverKind
    values: frozenset[Any] = frozenset()
    mask: int = 0
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def key(self) -> str:
        """Its key among a rule's offers: the field, and the kind for a path's
        prefix offer (the field's other offer is its basename)."""
        return offer_key(self.field, self.kind)


def offer_key(field: str, kind: ApproverKind) -> str:
    return f"{field} (prefix)" if kind is ApproverKind.PREFIX else field


@dataclass(frozen=True)
class RuleApprovers:
    rule_id: str
    offers: Mapping[str, Offer]
    chosen: Offer | None  # the best valid offer

    @property
    def reason(self) -> str | None:
        if self.chosen is not None:
            return None
        return "; ".join(f"{k}: {o.reason}" for k, o in self.offers.items()) or "no approvable field"


@dataclass(frozen=True)
class FieldApprovers:
    field: str
    kind: ApproverKind
    values: frozenset[Any] = frozenset()  # basenames, prefixes or scalar values
    mask: int = 0                          # bitmask kind: union of the rules' masks


@dataclass(frozen=True)
class EventTypeApprovers:
    event_type: str
    rules: tuple[RuleApprovers, ...]
    approvers: Mapping[str, FieldApprovers] | None  # None: no approvers for this type
    reason: str | None = None


class _Collector:
    """Walks a rule's IR for comparisons of one field with constants."""

    def __init__(self, spec: Field, kind: ApproverKind | None = None) -> None:
        self.spec = spec
        self.kind = kind or spec.approver.kind  # type: ignore[union-attr]
        self.values: set[Any] = set()
        self.mask = 0
        self.problems: list[str] = []

    def refers(self, node: ir.Expr) -> bool:
        return isinstance(node, ir.FieldRef) and node.register is None and node.field.name == self.spec.name

    def walk(self, node: ir.Expr, negated: bool = False) -> None:
        if isinstance(node, ir.Exists):  # some element makes the body hold: the body's offers stand
            self.walk(node.body, negated)
        elif isinstance(node, ir.Not):
            self.walk(node.operand, not negated)
        elif isinstance(node, ir.Logic):
            for o in node.operands:
                self.walk(o, negated)
        elif isinstance(node, ir.Compare):
            self.compare(node, negated)

    def compare(self, node: ir.Compare, negated: bool) -> None:
        left, right = node.left, node.right
        if self.kind is ApproverKind.BITMASK and isinstance(left, ir.Arith) and self.refers(left.left):
            if negated:
                self.problems.append("negation")
            elif left.op == "&" and isinstance(left.right, ir.Const) and _tests_any_bit(node):
                if left.right.value == 0:
                    self.problems.append("zero mask")
                self.mask |= left.right.value
            else:
                self.problems.append("not a bit test (field & MASK > 0)")
            return
        mentions = self.refers(left) or self.refers(right)
        if not mentions:
            return
        if negated != (node.op in ("!=", "not in")):
            self.problems.append("negation")
            return
        if not self.refers(left) or not isinstance(right, ir.Const):
            other = right if self.refers(left) else left
            if isinstance(other, (ir.VarRef, ir.Template)) or getattr(other, "via_variable", False):
                self.problems.append("compared with a variable")
            elif isinstance(other, ir.FieldRef):
                self.problems.append("compared with another field")
            else:
                self.problems.append("not compared with a constant")
            return
        if node.op not in ("==", "in") and not (node.op == "allin" and not self.spec.array):
            self.problems.append(f"operator '{node.op}' cannot approve")
            return
        items = right.value if right.type.array else (right.value,)
        found = [self.approver_value(v) for v in items]
        if all(v is not None for v in found):
            for v in found:
                if self.kind is ApproverKind.BITMASK:
                    self.mask |= v
                else:
                    self.values.add(v)

    def approver_value(self, value: Any) -> Any:
        if self.kind is ApproverKind.PREFIX:
            return self.prefix_value(value)
        if isinstance(value, StrMatcher):
            if value.kind == "regex":
                self.problems.append("regex")
            elif self.kind is ApproverKind.BASENAME and value.kind == "glob":
                base = glob_basename(value.text)
                if "*" not in base and base:
                    return base
                self.problems.append("glob whose basename has '*'")
            else:
                self.problems.append(f"{value.kind} on a {self.kind.value} field")
            return None
        if self.kind is ApproverKind.BASENAME:
            base = posixpath.basename(value) if isinstance(value, str) else ""
            if not base:
                self.problems.append(f"no basename in {value!r}")
                return None
            return base
        if self.kind is ApproverKind.BITMASK:
            if not isinstance(value, int) or value == 0:
                self.problems.append("zero mask")
                return None
            return value
        return value


    def prefix_value(self, value: Any) -> str | None:
        if isinstance(value, StrMatcher) and value.kind == "regex":
            self.problems.append("regex")
            return None
        prefix = literal_dir_prefix(value) if isinstance(value, (str, StrMatcher)) else None
        shown = str(value) if isinstance(value, StrMatcher) else repr(value)
        if prefix is None:
            self.problems.append(f"{shown} is not an absolute path")
        elif prefix == "/":
            self.problems.append(f"{shown} has no directory prefix below '/'")
        else:
            return prefix
        return None


def _tests_any_bit(node: ir.Compare) -> bool:
    """``X > 0``, ``X != 0``, ``X >= 1``, or ``X == M`` with M the mask."""
    if not isinstance(node.right, ir.Const) or not isinstance(node.right.value, int):
        return False
    k = node.right.value
    mask = node.left.right.value if isinstance(node.left, ir.Arith) and isinstance(node.left.right, ir.Const) else 0
    return ((node.op == ">" and k == 0) or (node.op == "!=" and k == 0) or (node.op == ">=" and k == 1)
            or (node.op == "==" and k == mask and k != 0))


def offer(expr: ir.Expr, spec: Field, kind: ApproverKind | None = None) -> Offer:
    """What a rule (its IR) offers as approvers on ``spec`` (of the field's
    own kind, or ``kind``: PREFIX for a path field)."""
    assert spec.approver is not None
    kind = kind or spec.approver.kind
    c = _Collector(spec, kind)
    c.walk(expr)
    if not c.values and not c.mask:
        reason = ", ".join(dict.fromkeys(c.problems)) or "not compared with a constant"
        return Offer(spec.name, kind, reason=reason)
    if kind is ApproverKind.BITMASK:
        outside: Any = MaskNone(c.mask)
    elif kind is ApproverKind.BASENAME:
        outside = BasenameNotIn(frozenset(c.values))
    elif kind is ApproverKind.PREFIX:
        outside = PrefixNotIn(frozenset(c.values))
    else:
        outside = ValueNotIn(frozenset(c.values))
    if partial_eval(expr, spec, outside) is not False:
        detail = ", ".join(dict.fromkeys(c.problems))
        reason = "the rule can match with other values" + (f" ({detail})" if detail else
                                                             " (e.g. it is OR-ed with another field)")
        return Offer(spec.name, kind, reason=reason)
    return Offer(spec.name, kind, frozenset(c.values), c.mask)


def candidates(event_type: str, registry: Registry = REGISTRY) -> list[tuple[Field, Approver]]:
    """(field, approver) pairs of ``event_type``, best first: each approvable
    field's own approver, and a path field's prefix."""
    own = [(f, f.approver) for f in registry.approvable(event_type) if f.approver is not None]
    prefixes = [(f, PREFIX) for f, a in own if a.kind is ApproverKind.BASENAME]
    return sorted(own + prefixes, key=lambda c: (-c[1].weight, c[0].name))


# Exec-name approvers: a file field of the event and the fields of the task's
# executable it may equal, whose basenames the kernel keeps (recorded at exec
# and fork: ebpf/include/filters.h rs_exec_names). Equal paths (or names)
# have equal basenames, so a file whose basename is neither can match no
# `<type>.file.path == process.file.path`.
EXEC_FIELDS: dict[str, tuple[str, ...]] = {
    "file.path": ("process.file.path", "process.parent.file.path"),
    "file.name": ("process.file.name", "process.parent.file.name"),
}


def _exec_compares(node: ir.Expr, spec: Field, targets: frozenset[str]) -> set[str]:
    """The fields of ``targets`` that ``spec`` is compared with somewhere in ``node``."""
    found: set[str] = set()
    if isinstance(node, ir.Compare) and node.op in ("==", "!="):
        for a, b in ((node.left, node.right), (node.right, node.left)):
            if (isinstance(a, ir.FieldRef) and a.register is None and a.field.name == spec.name
                    and isinstance(b, ir.FieldRef) and b.register is None and b.field.name in targets):
                found.add(b.field.name)
    elif isinstance(node, ir.Logic):
        for child in node.operands:
            found |= _exec_compares(child, spec, targets)
    elif isinstance(node, ir.Not):
        found |= _exec_compares(node.operand, spec, targets)
    elif isinstance(node, ir.Exists):
        found |= _exec_compares(node.body, spec, targets)
    return found


def exec_offer(expr: ir.Expr, spec: Field) -> Offer:
    """What a rule offers on ``spec`` (``<type>.file.path`` or ``.file.name``)
    by comparing it with the task's executable or its parent's: the fields it
    is compared with, proved by partial evaluation (with the file's basename
    different from theirs, the rule must be certainly false)."""
    rel = spec.name.partition(".")[2]
    targets = frozenset(EXEC_FIELDS.get(rel, ()))
    kind = ApproverKind.EXEC_BASENAME
    found = _exec_compares(expr, spec, targets)
    if not found:
        return Offer(spec.name, kind, reason="not compared with the executable's " + rel.split(".")[-1])
    if partial_eval(expr, spec, BasenameNotOf(targets)) is not False:
        return Offer(spec.name, kind, reason="the rule can match other files than the executable's")
    return Offer(spec.name, kind, frozenset(found))


def rule_approvers(rule_id: str, expr: ir.Expr, event_type: str, registry: Registry = REGISTRY) -> RuleApprovers:
    offers = {offer_key(f.name, a.kind): offer(expr, f, a.kind) for f, a in candidates(event_type, registry)}
    chosen = next((o for o in offers.values() if o.ok), None)  # candidates() are best first
    return RuleApprovers(rule_id, offers, chosen)


def event_type_approvers(event_type: str, rules: Iterable[Any], registry: Registry = REGISTRY) -> EventTypeApprovers:
    """Approvers of one event type, from its rules (objects with ``id`` and ``ir``)."""
    per_rule = tuple(rule_approvers(r.id, r.ir, event_type, registry) for r in rules)
    if not per_rule:
        return EventTypeApprovers(event_type, (), None, "no rules")
    missing = [r for r in per_rule if r.chosen is None]
    if missing:
        reason = "; ".join(f"rule '{r.rule_id}' offers no approver ({r.reason})" for r in missing)
        return EventTypeApprovers(event_type, per_rule, None, reason)
    merged: dict[str, FieldApprovers] = {}
    for r in per_rule:
        o = r.chosen
        assert o is not None
        prev = merged.get(o.key, FieldApprovers(o.field, o.kind))
        merged[o.key] = FieldApprovers(o.field, o.kind, prev.values | o.values, prev.mask | o.mask)
    return EventTypeApprovers(event_type, per_rule, dict(sorted(merged.items())))


def compute_approvers(ruleset: Any, registry: Registry = REGISTRY) -> dict[str, EventTypeApprovers]:
    """Approvers for every event type of a :class:`agent.evaluator.ruleset.Ruleset`."""
    return {t: event_type_approvers(t, ruleset.rules_for(t), registry) for t in ruleset.event_types}


__all__ = ["Offer", "RuleApprovers", "FieldApprovers", "EventTypeApprovers", "offer", "offer_key", "candidates",
           "exec_offer", "EXEC_FIELDS", "rule_approvers", "event_type_approvers", "compute_approvers"]

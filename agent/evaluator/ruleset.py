"""Compiled rules and the ruleset the agent evaluates events against."""
from __future__ import annotations

import functools
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Iterable, Mapping

from codegen import ast, ir
from codegen.actions import Action, Position, SetAction
from codegen.fields import Field
from .event import DocumentEvent, as_event
from .index import Bucket
from .variables import VariableStore

log = logging.getLogger(__name__)

Fn = Callable[[DocumentEvent], Any]


@dataclass(eq=False)
class Rule:
    """One compiled rule. ``matches`` runs its closure on an event of its type."""

    id: str
    expression: str
    event_type: str
    ast: ast.Node
    ir: ir.Expr
    position: Position
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    every: int | None = None  # ns between two alerts, None: no limit
    actions: tuple[Action, ...] = ()
    filters: tuple[str, ...] = ()  # host filters, OR-ed
    disabled: bool = False
    policy: str = ""
    fn: Fn = field(default=lambda ev: False, repr=False)
    host_filters: tuple[Fn, ...] = field(default=(), repr=False)
    silent: bool = False  # a match runs the actions, raises no alert (``silent: true``)
    anomaly: Mapping[str, str] | None = None  # generated from a profile: the alert names the new item

    def matches(self, event: DocumentEvent | dict[str, Any]) -> bool:
        """True when the event is of this rule's type and the expression holds."""
        ev = as_event(event)
        return ev.type == self.event_type and bool(self.fn(ev))

    def accepts_host(self, host: DocumentEvent | dict[str, Any]) -> bool:
        """Whether the host filters (OR-ed) let this rule load on ``host``."""
        if not self.host_filters:
            return True
        ev = as_event(host)
        return any(bool(f(ev)) for f in self.host_filters)

    @property
    def set_actions(self) -> tuple[SetAction, ...]:
        return tuple(a for a in self.actions if isinstance(a, SetAction))

    @functools.cached_property
    def hash_fields(self) -> tuple[Field, ...]:
        """The ``*.file.hashes`` fields the expression reads (not through an
        iterator): their values, computed to decide, are shown in the alert."""
        return tuple(f for f in ir.fields_of(self.ir) if f.resolver == "hashes" and not f.iterator)


class Ruleset:
    """Enabled rules bucketed by event type (policy order inside a bucket).

    ``evaluate`` runs only the rules of the event's type; a matching rule's
    ``set`` actions update :attr:`variables` right away, so rules after it
    (and later events) see the new values.
    """

    def __init__(self, rules: Iterable[Rule], variables: VariableStore | None = None) -> None:
        self.rules: tuple[Rule, ...] = tuple(r for r in rules if not r.disabled)
        self.variables = variables if variables is not None else VariableStore()
        self.variables.declare(a for r in self.rules for a in r.set_actions)
        buckets: dict[str, list[Rule]] = {}
        for rule in self.rules:
            buckets.setdefault(rule.event_type, []).append(rule)
        self.by_event_type: Mapping[str, tuple[Rule, ...]] = {k: tuple(v) for k, v in buckets.items()}
        self._index = {k: Bucket(v) for k, v in self.by_event_type.items()}
        self._stateful = frozenset(k for k, v in buckets.items() if any(r.set_actions for r in v))

    def rules_for(self, event_type: str) -> tuple[Rule, ...]:
        return self.by_event_type.get(event_type, ())

    @property
    def event_types(self) -> list[str]:
        return sorted(self.by_event_type)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def matching(self, event: DocumentEvent | dict[str, Any], evaluated: Counter[str] | None = None) -> list[Rule]:
        """Rules matching ``event``, in policy order; runs their ``set`` actions.
        ``evaluated`` counts, per rule id, the rules whose expression ran (the
        index skips the others)."""
        ev = as_event(event)
        ev.variables = self.variables
        bucket = self._index.get(ev.type)
        out: list[Rule] = []
        if bucket is None:
            if ev.type == "exit" and self.variables.free_exited:
                self.variables.process_exited(ev)
            return out
        for _, rule, fn in bucket.candidates(ev):
            if evaluated is not None:
                evaluated[rule.id] += 1
            if fn(ev):
                out.append(rule)
                for action in rule.set_actions:
                    self.variables.apply(action, ev)
        if ev.type == "exit" and self.variables.free_exited:
            self.variables.process_exited(ev)  # after its rules read them
        return out

    def evaluate(self, event: DocumentEvent | dict[str, Any]) -> list[str]:
        """IDs of the rules matching ``event``, in policy order."""
        ev = event if isinstance(event, DocumentEvent) else DocumentEvent(event)
        if ev.type in self._stateful:
            return [r.id for r in self.matching(ev)]
        bucket = self._index.get(ev.type)
        if bucket is None:
            return []
        ev.variables = self.variables
        return bucket.ids(ev)

    def __len__(self) -> int:
        return len(self.rules)

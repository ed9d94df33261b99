"""User variables written by ``set`` actions and read by expressions.

Scopes: global, per process (keyed by ``process.pid``), per container
(``container.id``) and per cgroup (``cgroup.id``); ``scope_field`` keys the
scope by another field's value instead (``cgroup_write.pid``: the process
written into a cgroup). A ``ttl`` expires a value relative to the event
time. ``append`` keeps a list of distinct values (``size`` bounds it, oldest
dropped first). A variable never set reads as its ``default_value`` (else
the zero of its type). An ``inherited`` process variable is seen by the
descendants of the process that set it, until one sets its own. Built-in
variables (``${builtins.uuid4}``) are computed at each read. The process
variables of a process that exited are freed (counted in ``freed``): at its
``exit`` event, and by a sweep of ``/proc`` every 10 s of events.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from codegen.actions import SetAction
from codegen.fields import REGISTRY
from codegen.semantics import VARIABLE_BUILTINS
from .event import MISSING, DocumentEvent

_SCOPE_KEYS = {"process": REGISTRY.fields["process.pid"], "container": REGISTRY.fields["container.id"],
               "cgroup": REGISTRY.fields["cgroup.id"]}
_ANCESTOR_PIDS = REGISTRY.fields["process.ancestors.pid"]
_EXIT_PID = REGISTRY.fields["process.pid"]
SWEEP_EVERY_NS = 10_000_000_000  # process variables of exited processes are looked for every 10 s (event time)

BUILTINS: dict[str, Callable[[], Any]] = {"builtins.uuid4": lambda: str(uuid.uuid4())}
assert set(BUILTINS) == set(VARIABLE_BUILTINS), "codegen.semantics.VARIABLE_BUILTINS and BUILTINS differ"


class VariableStore:
    def __init__(self, actions: Iterable[SetAction] = (), free_exited: bool = False) -> None:
        self._values: dict[tuple[str, Any], tuple[Any, int | None]] = {}
        self._defaults: dict[str, Any] = {}
        self._inherited: set[str] = set()
        # process variables of processes gone: freed at their exit event, and by a sweep of
        # /proc every SWEEP_EVERY_NS when `free_exited` (the running agent; not a replay)
        self.free_exited = free_exited
        self.freed = 0
        self._process_keys: dict[int, set[tuple[str, Any]]] = {}
        self._last_sweep = 0
        self.declare(actions)

    def declare(self, actions: Iterable[SetAction]) -> None:
        """Learn the variables' defaults and which are inherited (from every ``set`` of the ruleset)."""
        for a in actions:
            if a.default_value is not None:
                self._defaults.setdefault(a.variable, a.default_value)
            if a.inherited and a.scope == "process":
                self._inherited.add(a.variable)

    @staticmethod
    def _key(name: str, ev: DocumentEvent) -> tuple[str, Any]:
        scope = name.split(".", 1)[0] if "." in name else None
        if scope in _SCOPE_KEYS:
            return name, ev.get(_SCOPE_KEYS[scope])
        return name, None

    def _entry(self, key: tuple[str, Any], ev: DocumentEvent) -> Any:
        entry = self._values.get(key)
        if entry is None:
            return MISSING
        value, expires = entry
        if expires is not None and ev.timestamp >= expires:
            del self._values[key]
            return MISSING
        return value

    def lookup(self, name: str, ev: DocumentEvent) -> Any:
        """The value of ``${name}`` for this event, or MISSING."""
        builtin = BUILTINS.get(name)
        if builtin is not None:
            return builtin()
        value = self._entry(self._key(name, ev), ev)
        if value is MISSING and name in self._inherited:
            for pid in ev.get(_ANCESTOR_PIDS) or ():  # nearest ancestor first
                value = self._entry((name, pid), ev)
                if value is not MISSING:
                    break
        if value is MISSING:
            return self._defaults.get(name, MISSING)
        return value

    def apply(self, action: SetAction, ev: DocumentEvent) -> None:
        """Run a ``set`` action for an event that matched its rule."""
        if action.guard is not None and not action.guard(ev):
            return
        if action.compute is not None:
            value = action.compute(ev)
        else:
            value = ev.get(action.field) if action.field is not None else action.value
        if action.scope_field is not None:
            key = (action.variable, ev.get(action.scope_field))
        else:
            key = self._key(action.variable, ev)
        expires = ev.timestamp + action.ttl if action.ttl else None
        if action.scope == "process" or action.scope_field is not None:
            if isinstance(key[1], int):
                self._process_keys.setdefault(key[1], set()).add(key)
            if self.free_exited and ev.timestamp - self._last_sweep >= SWEEP_EVERY_NS:
                self._last_sweep = ev.timestamp
                self.sweep()
        if action.append:
            current = self._entry(key, ev)
            if current is MISSING and action.variable in self._inherited:
                current = self.lookup(action.variable, ev)
            items = list(current) if isinstance(current, (list, tuple)) else []
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if v not in items:
                    items.append(v)
            if action.size:
                items = items[-action.size :]
            value = items
        self._values[key] = (value, expires)

    def process_exited(self, ev: DocumentEvent) -> None:
        """An ``exit`` event: free the variables of the process that ended."""
        self._free(ev.get(_EXIT_PID))

    def _free(self, pid: int) -> None:
        for key in self._process_keys.pop(pid, ()):
            if self._values.pop(key, None) is not None:
                self.freed += 1

    def sweep(self) -> int:
        """Free the process variables of every process no longer running; how many were freed."""
        before = self.freed
        for pid in [p for p in self._process_keys if not os.path.exists(f"/proc/{p}")]:
            self._free(pid)
        return self.freed - before

    def clear(self) -> None:
        self._values.clear()
        self._process_keys.clear()

    def __len__(self) -> int:
        return len(self._values)

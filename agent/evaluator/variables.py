"""User variables written by ``set`` actions and read by expressions.

Scopes: global, per process (keyed by ``process.pid``), per container
(``container.id``) and per cgroup (``cgroup.id``). A ``ttl`` expires a value
relative to the event time. ``append`` keeps a list of distinct values
(``size`` bounds it, oldest dropped first).
"""
from __future__ import annotations

from typing import Any

from codegen.actions import SetAction
from .event import MISSING, DocumentEvent
from codegen.fields import REGISTRY

_SCOPE_KEYS = {"process": REGISTRY.fields["process.pid"], "container": REGISTRY.fields["container.id"],
               "cgroup": REGISTRY.fields["cgroup.id"]}


class VariableStore:
    def __init__(self) -> None:
        self._values: dict[tuple[str, Any], tuple[Any, int | None]] = {}

    @staticmethod
    def _key(name: str, ev: DocumentEvent) -> tuple[str, Any]:
        scope = name.split(".", 1)[0] if "." in name else None
        if scope in _SCOPE_KEYS:
            return name, ev.get(_SCOPE_KEYS[scope])
        return name, None

    def lookup(self, name: str, ev: DocumentEvent) -> Any:
        """The value of ``${name}`` for this event, or MISSING."""
        entry = self._values.get(self._key(name, ev))
        if entry is None:
            return MISSING
        value, expires = entry
        if expires is not None and ev.timestamp >= expires:
            return MISSING
        return value

    def apply(self, action: SetAction, ev: DocumentEvent) -> None:
        """Run a ``set`` action for an event that matched its rule."""
        value = ev.get(action.field) if action.field is not None else action.value
        key = self._key(action.variable, ev)
        expires = ev.timestamp + action.ttl if action.ttl else None
        if action.append:
            current = self.lookup(action.variable, ev)
            items = list(current) if isinstance(current, list) else []
            for v in value if isinstance(value, list) else [value]:
                if v not in items:
                    items.append(v)
            if action.size:
                items = items[-action.size :]
            value = items
        self._values[key] = (value, expires)

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)

"""Rule actions, parsed and validated: ``kill``, ``set``, ``hash``.

Follows the reference agent's definitions. ``set``: ``name`` and one of
``value`` / ``field``; ``scope`` (``process``, ``container``, ``cgroup``;
global when absent); ``append`` (the variable is an array), ``size``
(array capacity), ``ttl`` (a duration), ``default_value``, ``inherited``,
``private``. A variable set with scope S is read as ``${S.name}``.
``kill``: ``signal`` (a ``SIG*`` name, default ``SIGTERM``) and ``scope``
(``process`` or ``container``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Union

from .constants import SIGNALS
from .durations import TOO_LONG, parse_duration, too_long
from .limits import MAX_VARIABLE_SIZE
from .errors import Diagnostics
from .fields import REGISTRY, Field
from .ir import FIELD_KINDS, Kind, Type
from .yamlpos import YNode

VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
SET_SCOPES = ("process", "container", "cgroup")
KILL_SCOPES = ("process", "container")


@dataclass(frozen=True, slots=True)
class Position:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class KillAction:
    signal: str
    signal_number: int
    scope: str
    position: Position


@dataclass(frozen=True, slots=True)
class SetAction:
    name: str
    scope: str | None
    value: Any  # a constant (None when `field` is used)
    field: Field | None
    append: bool
    size: int
    ttl: int | None  # ns
    default_value: Any
    inherited: bool
    private: bool
    type: Type
    position: Position

    @property
    def variable(self) -> str:
        """The name expressions use: ``process.seen`` for scope process."""
        return f"{self.scope}.{self.name}" if self.scope else self.name


@dataclass(frozen=True, slots=True)
class HashAction:
    position: Position


Action = Union[KillAction, SetAction, HashAction]


class _Checker:
    def __init__(self, diags: Diagnostics) -> None:
        self.diags = diags

    def error(self, node: YNode, message: str) -> None:
        self.diags.error_at(node.file.path, node.line, node.col, message, node.file.lines[node.line - 1])

    def keys(self, node: YNode, allowed: tuple[str, ...], what: str) -> None:
        for key, key_node in node.keys.items():
            if key not in allowed:
                self.error(key_node, f"unknown {what} option '{key}' (expected one of: {', '.join(allowed)})")


def _value_type(value: Any) -> Type | None:
    if isinstance(value, bool):
        return Type(Kind.BOOL)
    if isinstance(value, int):
        return Type(Kind.INT)
    if isinstance(value, str):
        return Type(Kind.STR)
    if isinstance(value, list) and value:
        kinds = {_value_type(v) for v in value}
        if len(kinds) == 1 and None not in kinds:
            (t,) = kinds
            if t is not None and not t.array:
                return Type(t.kind, array=True)
    return None


def parse_actions(node: YNode, diags: Diagnostics) -> tuple[Action, ...]:
    """The ``actions:`` list of a rule; problems go to ``diags``."""
    check = _Checker(diags)
    if not node.is_sequence:
        check.error(node, "'actions' must be a list")
        return ()
    out: list[Action] = []
    for item in node.value:
        if not item.is_mapping or not item.value:
            check.error(item, "an action is a mapping with one of: kill, set, hash")
            continue
        kinds = [k for k in item.value if k in ("kill", "set", "hash", "coredump")]
        others = [k for k in item.value if k not in ("kill", "set", "hash", "coredump")]
        for key in others:
            check.error(item.keys[key], f"unknown action '{key}' (expected kill, set or hash)")
        if len(kinds) != 1:
            if kinds:
                check.error(item, "an action has exactly one of: kill, set, hash")
            continue
        kind = kinds[0]
        body = item.value[kind]
        pos = Position(item.file.path, item.keys[kind].line, item.keys[kind].col)
        action: Action | None
        if kind == "kill":
            action = _kill(check, body, pos)
        elif kind == "set":
            action = _set(check, body, pos)
        elif kind == "hash":
            action = HashAction(pos)
        else:
            check.error(item.keys[kind], "the 'coredump' action is not supported")
            action = None
        if action is not None:
            out.append(action)
    return tuple(out)


def _kill(check: _Checker, body: YNode, pos: Position) -> KillAction | None:
    if body.value is None:
        return KillAction("SIGTERM", SIGNALS["SIGTERM"], "process", pos)
    if not body.is_mapping:
        check.error(body, "'kill' takes a mapping: {signal: SIGKILL}")
        return None
    check.keys(body, ("signal", "scope", "disarmer"), "kill")
    ok = True
    signal_node = body.get("signal")
    signal = "SIGTERM" if signal_node is None else signal_node.value
    if not isinstance(signal, str) or signal not in SIGNALS:
        check.error(signal_node or body, f"unknown signal {signal!r} (expected a SIG* name such as SIGKILL)")
        ok = False
    scope_node = body.get("scope")
    scope = "process" if scope_node is None else scope_node.value
    if scope not in KILL_SCOPES:
        check.error(scope_node or body, f"invalid kill scope {scope!r} (expected process or container)")
        ok = False
    return KillAction(signal, SIGNALS[signal], scope, pos) if ok else None


def _set(check: _Checker, body: YNode, pos: Position) -> SetAction | None:
    if not body.is_mapping:
        check.error(body, "'set' takes a mapping: {name: ..., value: ...}")
        return None
    check.keys(body, ("name", "value", "field", "expression", "scope", "append", "size", "ttl",
                      "default_value", "inherited", "private"), "set")
    v = body.value
    ok = True
    name = v["name"].value if "name" in v else None
    if not isinstance(name, str) or not VARIABLE_NAME.fullmatch(name):
        check.error(v.get("name", body), f"'set' needs a variable name ([A-Za-z0-9_.]+), got {name!r}")
        ok = False
    scope = v["scope"].value if "scope" in v else None
    if scope is not None and scope not in SET_SCOPES:
        check.error(v["scope"], f"invalid scope {scope!r} (expected one of: {', '.join(SET_SCOPES)})")
        ok = False
    sources = [k for k in ("value", "field", "expression") if k in v]
    if len(sources) != 1:
        check.error(body, "'set' needs exactly one of 'value' or 'field'")
        return None
    if "expression" in v:
        check.error(v["expression"], "'set' with an expression is not supported; use 'value' or 'field'")
        return None
    bools = {}
    for key in ("append", "inherited", "private"):
        bools[key] = bool(v[key].value) if key in v else False
        if key in v and not isinstance(v[key].value, bool):
            check.error(v[key], f"'{key}' must be true or false")
            ok = False
    field = None
    value = None
    if "field" in v:
        field = REGISTRY.get(str(v["field"].value))
        if field is None:
            check.error(v["field"], f"unknown field {v['field'].value!r}")
            return None
        t: Type | None = Type(FIELD_KINDS[field.type], array=field.array)
    else:
        value = v["value"].plain()
        t = _value_type(value)
        if t is None:
            check.error(v["value"], "a variable's value is a boolean, an integer, a string or a non-empty list of one of those")
            return None
    assert t is not None
    if bools["append"]:
        t = Type(t.kind, array=True)
    size = v["size"].value if "size" in v else 0
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_VARIABLE_SIZE:
        check.error(v["size"], f"'size' must be an integer from 0 to {MAX_VARIABLE_SIZE:,}")
        ok = False
    ttl = None
    if "ttl" in v:
        ttl = parse_duration(v["ttl"].value)
        if too_long(ttl):
            check.error(v["ttl"], f"'ttl' too long: {TOO_LONG}")
            ok = False
        elif ttl is None:
            check.error(v["ttl"], f"invalid ttl {str(v['ttl'].value)[:40]!r} (a duration such as 10s, 5m, 1h)")
            ok = False
    default = v["default_value"].plain() if "default_value" in v else None
    if not ok:
        return None
    return SetAction(str(name), scope, value, field, bools["append"], size, ttl, default,
                     bools["inherited"], bools["private"], t, pos)

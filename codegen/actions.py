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
from dataclasses import dataclass, field as dc_field, replace
from typing import Any, Union

from .constants import SIGNALS
from .durations import TOO_LONG, parse_duration, too_long
from .limits import MAX_VARIABLE_SIZE
from .errors import Diagnostics
from .fields import REGISTRY, Field
from .ir import FIELD_KINDS, Kind, Type
from .semantics import UNKNOWN_FIELD, UNSUPPORTED
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
    filter: YNode | None = dc_field(default=None, compare=False)  # a SECL guard (`filter:` beside it)
    guard: Any = dc_field(default=None, compare=False)  # the guard compiled: event -> bool


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
    expression: YNode | None = dc_field(default=None, compare=False)  # `expression:`, compiled into compute
    scope_field: Field | None = None  # the scope is keyed by this field's value (not process.pid...)
    filter: YNode | None = dc_field(default=None, compare=False)
    guard: Any = dc_field(default=None, compare=False)
    compute: Any = dc_field(default=None, compare=False)  # event -> value, for `expression:`

    @property
    def variable(self) -> str:
        """The name expressions use: ``process.seen`` for scope process."""
        return f"{self.scope}.{self.name}" if self.scope else self.name


@dataclass(frozen=True, slots=True)
class HashAction:
    position: Position
    field: Field | None = None  # the file to hash (default: the event's own file)
    filter: YNode | None = dc_field(default=None, compare=False)
    guard: Any = dc_field(default=None, compare=False)


Action = Union[KillAction, SetAction, HashAction]


class _Checker:
    def __init__(self, diags: Diagnostics) -> None:
        self.diags = diags

    def error(self, node: YNode, message: str, code: str = "") -> None:
        self.diags.error_at(node.file.path, node.line, node.col, message, node.file.lines[node.line - 1], code)

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
        others = [k for k in item.value if k not in ("kill", "set", "hash", "coredump", "filter")]
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
            action = _hash(check, body, pos)
        else:
            check.error(item.keys[kind], "the 'coredump' action is not supported", UNSUPPORTED)
            action = None
        guard = item.get("filter")
        if guard is not None and not isinstance(guard.value, str):
            check.error(guard, "an action's 'filter' is a SECL expression")
            action = None
        if action is not None:
            out.append(replace(action, filter=guard) if guard is not None else action)
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
    check.keys(body, ("name", "value", "field", "expression", "scope", "scope_field", "append", "size", "ttl",
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
        check.error(body, "'set' needs exactly one of 'value', 'field' or 'expression'")
        return None
    if "expression" in v and not isinstance(v["expression"].value, (str, int, bool)):
        check.error(v["expression"], "'expression' is a SECL expression")
        return None
    scope_field = None
    if "scope_field" in v:
        scope_field = REGISTRY.get(str(v["scope_field"].value))
        if scope_field is None or scope_field.array:
            check.error(v["scope_field"], f"unknown field {v['scope_field'].value!r} (scope_field names a "
                                          "scalar field whose value keys the scope)", UNKNOWN_FIELD)
            return None
    bools = {}
    for key in ("append", "inherited", "private"):
        bools[key] = bool(v[key].value) if key in v else False
        if key in v and not isinstance(v[key].value, bool):
            check.error(v[key], f"'{key}' must be true or false")
            ok = False
    field = None
    value = None
    t: Type | None
    default = v["default_value"].plain() if "default_value" in v else None
    if "expression" in v:
        # typed when the policy's variables are known (codegen.policy); a default's type until then
        t = _value_type(default) if default is not None else Type(Kind.ANY)
    elif "field" in v:
        field = REGISTRY.get(str(v["field"].value))
        if field is None:
            check.error(v["field"], f"unknown field {v['field'].value!r}", UNKNOWN_FIELD)
            return None
        t = Type(FIELD_KINDS[field.type], array=field.array)
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
        raw = v["ttl"].value
        # an integer is nanoseconds, as in the reference agent (a duration string: "10s")
        ttl = raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else parse_duration(raw)
        if too_long(ttl):
            check.error(v["ttl"], f"'ttl' too long: {TOO_LONG}")
            ok = False
        elif ttl is None:
            check.error(v["ttl"], f"invalid ttl {str(v['ttl'].value)[:40]!r} (a duration such as 10s, 5m, 1h)")
            ok = False
    if not ok:
        return None
    return SetAction(str(name), scope, value, field, bools["append"], size, ttl, default,
                     bools["inherited"], bools["private"], t, pos, v.get("expression"), scope_field)


def _hash(check: _Checker, body: YNode, pos: Position) -> HashAction | None:
    """``hash`` (the event's file) or ``hash: {field: exec.file.path}``."""
    if body.value is None:
        return HashAction(pos)
    if not body.is_mapping:
        check.error(body, "'hash' takes nothing or a mapping: {field: exec.file.path}")
        return None
    check.keys(body, ("field",), "hash")
    node = body.get("field")
    if node is None:
        return HashAction(pos)
    name = str(node.value)
    field = REGISTRY.get(name if name.endswith(".path") else name + ".path")  # a file, or its path
    if field is None:
        check.error(node, f"'hash' needs a file path field (such as exec.file.path), got {node.value!r}", UNKNOWN_FIELD)
        return None
    return HashAction(pos, field)

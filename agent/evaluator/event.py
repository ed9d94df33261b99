"""Event access protocol for the evaluator.

An event document (docs/interfaces.md) is the SECL field tree as nested dicts,
plus top-level ``type`` and ``timestamp``. The agent may build it lazily:
any dict value or list element may be a :class:`Lazy`; it is resolved on
first access and the result is written back in place (memoized), at any
depth.

:class:`DocumentEvent` wraps a document for evaluation: each field is read at
most once per event (cached by name) and only when a rule needs it.

Missing values, like the reference agent's zero values: a field absent from
the document (or of the wrong JSON type) reads as its type's zero value —
``0``, ``""``, ``false``, an empty array, no IP address. So
``open.file.path != "/x"`` is true on an event without a path, and
``process.ancestors.file.name == "sshd"`` is false without ancestors.
"""
from __future__ import annotations

import ipaddress
import logging
import posixpath
import time
from codegen.hostinfo import ORIGIN
from .cmdline import flags, options
from .domains import root_domain
from agent.hashing import default_hasher
from typing import Any
from collections.abc import Callable, Mapping

from codegen.fields import HELPERS as FIELD_HELPERS, ITER, Field, FieldType, PathKey

log = logging.getLogger(__name__)

MISSING: Any = object()
Getter = Callable[[Any], Any]


class Lazy:
    """A document value computed on first access (zero-argument callable)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn

    def __repr__(self) -> str:
        return f"Lazy({self.fn!r})"


def child(container: Any, key: PathKey) -> Any:
    """``container[key]``, resolving and memoizing a Lazy; MISSING when absent."""
    if isinstance(key, int):
        if not isinstance(container, list) or not -len(container) <= key < len(container):
            return MISSING
    elif not isinstance(container, dict):
        return MISSING
    else:
        value = container.get(key, MISSING)
        if value.__class__ is not Lazy:
            return value
    value = container[key]
    while value.__class__ is Lazy:
        value = value.fn()
        container[key] = value
    return value


def elements(value: Any) -> list[Any]:
    """The elements of a list value, each Lazy resolved in place."""
    if not isinstance(value, list):
        return []
    for i, item in enumerate(value):
        if item.__class__ is Lazy:
            child(value, i)
    return value


class Resolved(dict):
    """A document part with no Lazy left at any depth (it was materialized):
    :func:`materialize` does not walk it again. For parts shared by many
    documents, such as a process image shown as an ancestor in every event
    of its descendants. Immutable once made: ``json`` holds its JSON once
    serialized (agent/sinks/record.py), spliced into every document that
    shows it."""

    __slots__ = ("json",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.json: bytes | None = None


class ResolvedList(list):
    """A list of resolved parts, shared like :class:`Resolved` (a process's
    chain of ancestors); ``json`` likewise."""

    __slots__ = ("json",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.json: bytes | None = None


RESOLVED = (Resolved, ResolvedList)


def resolved(doc: dict[str, Any]) -> Resolved:
    """Materialize ``doc`` once and mark it, and every dict inside it,
    :class:`Resolved` (a shallow copy of it then only has resolved parts)."""
    materialize(doc)

    def mark(value: Any) -> Any:
        if isinstance(value, dict) and value.__class__ is not Resolved:
            return Resolved({k: mark(v) for k, v in value.items()})
        if isinstance(value, list) and value.__class__ is not ResolvedList:
            return [mark(v) for v in value]
        return value

    return mark(doc)


def materialize(doc: Any) -> Any:
    """Resolve every Lazy in ``doc`` in place (for JSON output); returns ``doc``.

    Walks only containers that may hold a Lazy: scalars and resolved parts
    (:class:`Resolved`, :class:`ResolvedList`) are not visited."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if node.__class__ in RESOLVED:
            continue
        if isinstance(node, dict):
            items: Any = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            continue
        for key, value in items:
            if value.__class__ is Lazy:
                value = child(node, key)
            if isinstance(value, (dict, list)) and value.__class__ not in RESOLVED:
                stack.append(value)
    return doc


# --- zero values and coercion -------------------------------------------------

ZERO: Mapping[FieldType, Any] = {FieldType.INT: 0, FieldType.STRING: "", FieldType.BOOL: False,
                                 FieldType.IP: None}


def _int(v: Any) -> int:
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return 0


def _str(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "backslashreplace")
    return ""


def _bool(v: Any) -> bool:
    return v if isinstance(v, bool) else bool(v) if isinstance(v, int) else False


def _ip(v: Any) -> Any:
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return v
    try:
        return ipaddress.ip_address(v) if isinstance(v, (str, int)) else None
    except ValueError:
        return None


COERCE: Mapping[FieldType, Callable[[Any], Any]] = {
    FieldType.INT: _int, FieldType.STRING: _str, FieldType.BOOL: _bool, FieldType.IP: _ip,
}


# --- resolvers: (object holding the key, key) -> raw value ----------------------

def _name(obj: Any, key: str) -> Any:
    value = child(obj, key)
    if value is MISSING or value is None:
        path = child(obj, "path")
        return posixpath.basename(path) if isinstance(path, str) else MISSING
    return value


def _extension(obj: Any, key: str) -> str:
    """The reference agent's file extension: the basename from its last dot
    (`.yaml`, as its policies compare it), empty without one; a leading dot
    (`.bashrc`) counts, as Go's filepath.Ext has it."""
    _, ext = posixpath.splitext("x" + _str(_name(obj, key)))
    return ext


def _length(obj: Any, key: str) -> Any:
    value = child(obj, key)
    return len(elements(value)) if isinstance(value, list) else len(value) if isinstance(value, str) else 0


def _rights(obj: Any, key: str) -> Any:
    value = child(obj, key)
    if value is MISSING or value is None:
        mode = child(obj, "mode")
        return mode & 0o7777 if isinstance(mode, int) else MISSING
    return value


def _argv(obj: Any) -> list[Any]:
    return elements(child(obj, "argv"))


def _derived(derive: Callable[[list[Any]], Any]) -> Callable[[Any, str], Any]:
    def resolve(obj: Any, key: str) -> Any:
        value = child(obj, key)
        if value is MISSING or value is None:
            argv = _argv(obj)
            return derive(argv) if argv else MISSING
        return value
    return resolve


def _envs(obj: Any, key: str) -> Any:
    value = child(obj, key)
    if value is MISSING or value is None:
        envp = elements(child(obj, "envp"))
        return [e.split("=", 1)[0] for e in envp if isinstance(e, str)] if envp else MISSING
    return value


def _hashes(obj: Any, key: str) -> Any:
    """The file's digests: the document's (a ``hash`` action filled them in),
    else computed now, bounded and cached (agent/hashing.py), and kept in the
    document (unless that part is a shared :class:`Resolved` one)."""
    value = child(obj, key)
    if isinstance(value, list):
        return value
    path, inode = child(obj, "path"), child(obj, "inode")
    if not isinstance(path, str) or not isinstance(obj, dict):
        return MISSING
    result = default_hasher().hash_file(path, inode if isinstance(inode, int) else 0)
    if not result.hashes:
        return MISSING
    if obj.__class__ in RESOLVED:  # shared by many documents, immutable: read, not kept
        return list(result.hashes)
    obj[key] = list(result.hashes)
    return obj[key]


SERVICE_ENV = "DD_SERVICE="


def _env_service(proc: Any) -> str:
    for entry in elements(child(proc, "envp")):
        if isinstance(entry, str) and entry.startswith(SERVICE_ENV):
            return entry[len(SERVICE_ENV):]
    return ""


def _container_of(proc: Any) -> Any:
    return child(child(proc, "container"), "id")


def _service(obj: Any, key: str) -> Any:
    """``event.service``: DD_SERVICE of the event's process, then of its ancestors
    (only those in its container when it is in one), as the reference agent
    guesses it: the longest when each value extends the next shorter one, else the
    closest to the process."""
    value = child(obj, key)
    if isinstance(value, str):
        return value
    proc = child(obj, "process")
    if proc is MISSING:
        return MISSING
    container = _container_of(proc)
    values = [v for v in (_env_service(proc),) if v]
    for ancestor in elements(child(proc, "ancestors")):
        if container not in (MISSING, "") and _container_of(ancestor) in (MISSING, ""):
            break
        v = _env_service(ancestor)
        if v:
            values.append(v)
    if not values:
        return ""
    longest = sorted(values, key=len, reverse=True)
    if all(a.startswith(b) for a, b in zip(longest, longest[1:])):
        return longest[0]
    return values[0]


RESOLVERS: Mapping[str, Callable[[Any, str], Any]] = {
    "hashes": _hashes,
    "name": _name,
    "name_length": lambda obj, key: len(_str(_name(obj, key))),
    "extension": _extension,
    "length": _length,
    "rights": _rights,
    "argv0": _derived(lambda argv: argv[0]),
    "args": _derived(lambda argv: " ".join(str(a) for a in argv[1:])),
    "argc": _derived(len),
    "args_flags": _derived(lambda argv: flags([str(a) for a in argv[1:]])),
    "args_options": _derived(lambda argv: options([str(a) for a in argv[1:]])),
    "envs": _envs,
    "origin": lambda obj, key: child(obj, key) if child(obj, key) not in (MISSING, None) else ORIGIN,
    "source": lambda obj, key: child(obj, key) if child(obj, key) not in (MISSING, None) else "runtime",
    "service": _service,
}


def _root_domain(value: Any) -> str:
    return root_domain(value) if isinstance(value, str) else ""


# Helper fields (codegen.fields.HELPERS): value of the field they are of -> theirs.
HELPERS: Mapping[str, Callable[[Any], Any]] = {
    "length": lambda v: len(v) if isinstance(v, (str, list)) else 0,
    "root_domain": _root_domain,
}

assert set(HELPERS) == set(FIELD_HELPERS), "codegen.fields.HELPERS and agent.evaluator.event.HELPERS differ"

# --- field getters ---------------------------------------------------------------

def _walk(node: Any, path: tuple[PathKey, ...]) -> Any:
    for key in path:
        if key.__class__ is str and isinstance(node, dict):
            value = node.get(key, MISSING)
            node = child(node, key) if value.__class__ is Lazy else value
        else:
            node = child(node, key)
        if node is MISSING:
            return MISSING
    return node


def _reader(path: tuple[PathKey, ...], resolver: str | None) -> Callable[[Any], Any]:
    """Raw value at ``path`` (no iterator inside), through ``resolver``."""
    if resolver is None:
        return lambda node: _walk(node, path)
    fn = RESOLVERS[resolver]
    head, key = path[:-1], path[-1]

    def read(node: Any) -> Any:
        obj = _walk(node, head)
        return MISSING if obj is MISSING else fn(obj, str(key))
    return read


def make_getter(field: Field) -> Getter:
    """A function document -> the field's value, coerced, zero when missing."""
    if field.of is not None:  # a helper: computed from the value of the field it is of
        base, helper = getter(field.of), HELPERS[str(field.resolver)]
        return lambda doc: helper(base(doc))
    coerce = COERCE[field.type]
    zero = ZERO[field.type]

    def scalar(raw: Any) -> Any:
        return zero if raw is MISSING or raw is None else coerce(raw)

    def array(raw: Any) -> list[Any]:
        if raw is MISSING or raw is None:
            return []
        if isinstance(raw, list):
            return [scalar(v) for v in elements(raw)]
        return [scalar(raw)]

    if field.iterator:
        i = field.path.index(ITER)
        to_list, read_each = _reader(field.path[:i], None), _reader(field.path[i + 1 :], field.resolver)
        nested = field.type is not FieldType.INT or field.resolver != "length"

        def iterate(doc: Any) -> list[Any]:
            out: list[Any] = []
            for item in elements(to_list(doc)):
                raw = read_each(item)
                if isinstance(raw, list) and nested:
                    out.extend(array(raw))
                else:
                    out.append(scalar(raw))
            return out
        return iterate

    if field.resolver is None and field.fallback is None and not field.array and all(
            k.__class__ is str for k in field.path):
        return _plain_getter(field.path, zero, coerce, int if field.type is FieldType.INT else
                             str if field.type is FieldType.STRING else bool if field.type is FieldType.BOOL else None)
    read = _reader(field.path, field.resolver)
    if field.fallback is not None:
        primary, second = read, _reader(field.fallback, None)

        def read(doc: Any) -> Any:
            raw = primary(doc)
            return second(doc) if raw is MISSING or raw is None else raw
    if field.array:
        return lambda doc: array(read(doc))
    return lambda doc: scalar(read(doc))


def _plain_getter(path: tuple[PathKey, ...], zero: Any, coerce: Callable[[Any], Any], cls: Any) -> Getter:
    """The common case, inlined: a scalar at a path of dict keys."""
    def get(node: Any) -> Any:
        for key in path:
            if not isinstance(node, dict):
                return zero
            value = node.get(key, MISSING)
            node = child(node, key) if value.__class__ is Lazy else value
            if node is MISSING:
                return zero
        if node.__class__ is cls:
            return node
        return zero if node is None else coerce(node)
    return get


def make_element_getter(field: Field) -> Callable[[Any, int], Any]:
    """For an iterator field: a function (document, i) -> the field's value
    for element ``i`` of the iterator alone (a named iterator,
    ``process.ancestors[A].comm``), coerced, zero when missing."""
    i = field.path.index(ITER)
    to_list, read_each = _reader(field.path[:i], None), _reader(field.path[i + 1 :], field.resolver)
    coerce, zero = COERCE[field.type], ZERO[field.type]

    def scalar(raw: Any) -> Any:
        return zero if raw is MISSING or raw is None else coerce(raw)

    def get(doc: Any, index: int) -> Any:
        items = elements(to_list(doc))
        raw = read_each(items[index]) if 0 <= index < len(items) else MISSING
        if field.item_array:
            if raw is MISSING or raw is None:
                return []
            return [scalar(v) for v in elements(raw)] if isinstance(raw, list) else [scalar(raw)]
        return scalar(raw)
    return get


_GETTERS: dict[str, Getter] = {}


def getter(field: Field) -> Getter:
    """Cached :func:`make_getter` (fields are immutable)."""
    fn = _GETTERS.get(field.name)
    if fn is None or getattr(fn, "_field", None) is not field:
        fn = make_getter(field)
        fn._field = field  # type: ignore[attr-defined]
        _GETTERS[field.name] = fn
    return fn


class DocumentEvent:
    """An event document prepared for rule evaluation.

    ``cache`` maps a field name to its value once read; ``variables`` is the
    store user variables are read from (None: every variable reads as its
    zero value); ``timestamp`` is the event time ("now" for durations);
    ``register`` the element a named iterator (``[A]``) reads.
    """

    __slots__ = ("doc", "cache", "type", "timestamp", "variables", "register")

    def __init__(self, doc: dict[str, Any], variables: Any = None) -> None:
        if not isinstance(doc, dict):
            raise TypeError("an event document is a JSON object")
        self.doc = doc
        self.cache: dict[str, Any] = {}
        kind = doc.get("type")
        if kind.__class__ is Lazy:
            kind = child(doc, "type")
        self.type: str = kind if isinstance(kind, str) else ""
        ts = doc.get("timestamp")
        if ts.__class__ is Lazy:
            ts = child(doc, "timestamp")
        self.timestamp: int = ts if isinstance(ts, int) and not isinstance(ts, bool) else time.time_ns()
        self.variables = variables
        self.register = -1  # the element a named iterator stands for, while a rule tries each

    def get(self, field: Field) -> Any:
        """The value of ``field`` (read at most once per event)."""
        value = self.cache.get(field.name, MISSING)
        if value is MISSING:
            value = self.cache[field.name] = getter(field)(self.doc)
        return value

    def __repr__(self) -> str:
        return f"DocumentEvent(type={self.type!r}, timestamp={self.timestamp})"


def as_event(event: DocumentEvent | dict[str, Any]) -> DocumentEvent:
    return event if isinstance(event, DocumentEvent) else DocumentEvent(event)

"""Per-event-type rule index: only rules that can match are evaluated.

A rule whose top-level ``&&`` requires a scalar field to take one of a few
constant values (``open.file.path == "/etc/shadow"``, ``exec.file.name in
["nc", "socat"]``) is filed under those values; a rule requiring a path
field to match exact paths or globs whose first segment is literal
(``open.file.path =~ "/etc/*"``) is filed under that first segment
(``etc``). For an event, each indexing field is read once and only the
rules filed under its value run, plus the rules that could not be filed.
The tests stay in the rules' closures: the index is only a pre-filter and
never changes a result. Matching rules come out in policy order.
"""
from __future__ import annotations

from collections import Counter
from typing import Any
from collections.abc import Callable, Iterable, Sequence

from codegen import ir
from codegen.patterns import StrMatcher
from codegen.pybackend import field_reader

Fn = Callable[[Any], Any]
Entry = tuple[int, Any, Fn]  # (policy order, rule, closure)
Key = tuple[str, str]        # (field name, "exact" | "top")


def top_segment(path: Any) -> Any:
    """``/etc/passwd`` -> ``etc``; None for anything else."""
    if path.__class__ is not str or not path.startswith("/"):
        return None
    end = path.find("/", 1)
    return path[1:] if end < 0 else path[1:end]


def _top_of(value: Any) -> str | None:
    text = value.text if isinstance(value, StrMatcher) else value
    if isinstance(value, StrMatcher) and value.kind != "glob":
        return None
    if not isinstance(text, str) or not text.startswith("/"):
        return None
    end = text.find("/", 1)
    if end < 0:
        return None if isinstance(value, StrMatcher) else text[1:]
    top = text[1:end]
    return None if "*" in top or not top else top


def index_keys(expr: ir.Expr) -> dict[Key, tuple[ir.FieldRef, frozenset[Any]]]:
    """Index keys a match requires: key -> (field, the values it must take)."""
    conjuncts = expr.operands if isinstance(expr, ir.Logic) and expr.op == "&&" else (expr,)
    out: dict[Key, tuple[ir.FieldRef, frozenset[Any]]] = {}
    for node in conjuncts:
        if not isinstance(node, ir.Compare) or node.op not in ("==", "in"):
            continue
        left, right = node.left, node.right
        if not isinstance(left, ir.FieldRef) or left.type.array or not isinstance(right, ir.Const):
            continue
        if left.field.name == "event.timestamp":
            continue
        values = right.value if node.op == "in" else (right.value,)
        if not isinstance(values, tuple):
            continue
        candidates: list[tuple[Key, frozenset[Any]]] = []
        if all(isinstance(v, (str, int)) and not isinstance(v, StrMatcher) for v in values):
            candidates.append(((left.field.name, "exact"), frozenset(values)))
        if left.field.glob:
            tops = [_top_of(v) for v in values]
            if all(t is not None for t in tops):
                candidates.append(((left.field.name, "top"), frozenset(tops)))
        for key, keys in candidates:
            prev = out.get(key)
            out[key] = (left, keys if prev is None else prev[1] & keys)
    return out


def _reader(key: Key, ref: ir.FieldRef) -> Fn:
    read = field_reader(ref)
    if key[1] == "top":
        return lambda ev: top_segment(read(ev))
    return read


class Bucket:
    """The rules of one event type, indexed."""

    def __init__(self, rules: Sequence[Any], min_rules: int = 4) -> None:
        entries: list[Entry] = [(i, r, r.fn) for i, r in enumerate(rules)]
        keys = [index_keys(r.ir) for r in rules]
        counts = Counter(k for ks in keys for k in ks)
        tables: dict[Key, dict[Any, list[Entry]]] = {}
        readers: dict[Key, Fn] = {}
        always: list[Entry] = []
        for entry, ks in zip(entries, keys):
            if len(rules) < min_rules or not ks:
                always.append(entry)
                continue
            # exact values select best; then the key most rules share (fewer reads per event)
            key = max(ks, key=lambda k: (k[1] == "exact", counts[k], k))
            ref, values = ks[key]
            readers.setdefault(key, _reader(key, ref))
            table = tables.setdefault(key, {})
            for v in values:
                table.setdefault(v, []).append(entry)
        self.always: tuple[Entry, ...] = tuple(always)
        self.indexes: tuple[tuple[Fn, dict[Any, tuple[Entry, ...]]], ...] = tuple(
            (readers[k], {v: tuple(es) for v, es in table.items()}) for k, table in sorted(tables.items())
        )
        self.size = len(rules)

    def candidates(self, ev: Any) -> Iterable[Entry]:
        """The rules that may match ``ev``, in policy order."""
        if not self.indexes:
            return self.always
        found: list[Entry] = list(self.always)
        sources = 1 if found else 0
        for read, table in self.indexes:
            hit = table.get(read(ev))
            if hit:
                found.extend(hit)
                sources += 1
        if sources > 1:
            found.sort(key=_order)
        return found

    def ids(self, ev: Any) -> list[str]:
        return [r.id for _, r, fn in self.candidates(ev) if fn(ev)]


def _order(entry: Entry) -> int:
    return entry[0]

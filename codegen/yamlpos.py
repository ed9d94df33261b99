"""YAML loading that keeps the line and column of every node, within limits.

:func:`load` returns a tree of :class:`YNode`. A string scalar can map each
character of its *value* back to the file, through plain multi-line
folding, single and double quotes (escapes included) and block scalars
(``|``, ``>``, ``>-``...), so an error inside a SECL expression points at the
exact character in the policy file. The mapping is checked against PyYAML's
own value; when they disagree (an exotic form) positions fall back to the
start of the scalar rather than being wrong.

The tree is built from the parser's event stream with an explicit stack
(no recursion): an alias is the very node its anchor names, shared, never
copied, and the document's node count with every alias expanded is
counted as it is built, so an alias bomb ("billion laughs") is refused,
with its position, after a bounded amount of work — wherever it sits, used
or not.
Nesting is bounded too (the YAML parsers slow down quadratically with
depth, so the load stops at the first node past the limit). Limits:
:mod:`codegen.limits`. libyaml parses when PyYAML has it (it does in the
pinned wheels); the pure-Python parser otherwise, with the same results.
"""
from __future__ import annotations

import bisect
import logging
import os
import stat
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from . import limits
from .errors import Diagnostics, Source

log = logging.getLogger(__name__)

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_C_LOADER = _LOADER is not yaml.SafeLoader
_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_MAX_INT_CHARS = 40  # an 8-byte integer in any YAML spelling fits; longer ones are refused, not parsed

_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
    "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0",
    "L": "\u2028", "P": "\u2029",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


class YamlText:
    """A YAML file's text, its path and a character-index -> (line, col) map."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.lines = text.split("\n")
        self._starts = [0]
        for line in self.lines[:-1]:
            self._starts.append(self._starts[-1] + len(line) + 1)

    def position(self, index: int) -> tuple[int, int]:
        """1-based (line, col) of a character index."""
        line = bisect.bisect_right(self._starts, index) - 1
        return line + 1, index - self._starts[line] + 1

    def line(self, number: int) -> str:
        return self.lines[number - 1].rstrip("\r") if 0 < number <= len(self.lines) else ""


_NO_KEYS: Mapping[str, YNode] = MappingProxyType({})


@dataclass(eq=False, slots=True)
class YNode:
    """A YAML node: ``value`` is a dict of str -> YNode, a list of YNode or a scalar.

    Nodes reached through aliases are shared: the same object appears at
    every place its anchor is used (with the anchor's position).
    """

    value: Any
    line: int
    col: int
    file: YamlText
    tag: str = ""
    keys: Mapping[str, YNode] = field(default_factory=lambda: _NO_KEYS)  # mappings: each key's node
    start: int = -1                       # scalars: where the text is in the file (-1: not a scalar)
    end: int = -1
    style: str | None = None              # scalars: None (plain), "'", '"', "|" or ">"
    _index_map: Sequence[int] | None = None

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_sequence(self) -> bool:
        return isinstance(self.value, list)

    @property
    def is_string(self) -> bool:
        return isinstance(self.value, str) and self.tag.endswith(":str")

    def get(self, key: str) -> YNode | None:
        return self.value.get(key) if isinstance(self.value, dict) else None

    def plain(self) -> Any:
        """The Python value, positions dropped (bounded: see the module docstring)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value

    def locate(self, offset: int) -> tuple[int, int]:
        """(line, col) in the file of character ``offset`` of a string value."""
        if self._index_map is None:
            self._index_map = _index_map(self.file.text, self, str(self.value))
        if not self._index_map:
            return self.line, self.col
        offset = max(0, min(offset, len(self._index_map) - 1))
        return self.file.position(self._index_map[offset])

    def source(self) -> Source:
        """This string value as a SECL :class:`Source` mapped to the file."""
        return Source(str(self.value), self.file.path, self.file.lines, self.locate)


# --- reading files -------------------------------------------------------------------

def read_file(path: str | Path, diags: Diagnostics, what: str = "policy") -> str | None:
    """The text of a policy (or test case) file, or None with an error.

    Only regular files are read (not a FIFO or a device that never ends), at
    most :data:`codegen.limits.MAX_POLICY_BYTES`; the bytes must be UTF-8,
    and a byte that is not is reported at its own line and column.
    """
    name = str(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        diags.error_at(name, 1, 1, f"cannot read {what}: {exc.strerror or exc}")
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            diags.error_at(name, 1, 1, f"cannot read {what}: not a regular file")
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limits.MAX_POLICY_BYTES + 1)
    except OSError as exc:
        diags.error_at(name, 1, 1, f"cannot read {what}: {exc.strerror or exc}")
        return None
    finally:
        os.close(fd)
    if len(data) > limits.MAX_POLICY_BYTES:
        diags.error_at(name, 1, 1, f"{what} file larger than {limits.MAX_POLICY_BYTES // limits.MIB} MiB "
                                   f"(the limit; docs/secl.md \"Limits\"): split it into several files")
        return None
    return decode(data, name, diags)


def decode(data: bytes, name: str, diags: Diagnostics) -> str | None:
    """``data`` as UTF-8 text; an invalid byte is an error at its line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        before = data[line_start : exc.start].decode("utf-8", "replace")
        line_end = data.find(b"\n", exc.start)
        shown = data[line_start : line_end if line_end >= 0 else len(data)].decode("utf-8", "replace")
        bad = data[exc.start : exc.end]
        diags.error_at(name, line, len(before) + 1,
                       f"invalid UTF-8 byte 0x{bad[:1].hex()}: a policy is UTF-8 text",
                       shown)
        return None


# --- loading ---------------------------------------------------------------------------

class _Stop(Exception):
    """A limit was reached or the document is malformed (already reported)."""


@dataclass(eq=False, slots=True)
class _Frame:
    """A mapping or sequence being built."""

    node: YNode
    anchor: str | None
    keys: dict[str, YNode] | None  # mappings: the node's key nodes, written here
    size: int = 1
    key: YNode | None = None       # mappings: the key waiting for its value


class _Builder:
    """YNodes from parser events (see the module docstring)."""

    def __init__(self, loader: Any, ytext: YamlText, diags: Diagnostics) -> None:
        self.loader = loader
        self.ytext = ytext
        self.diags = diags
        self.anchors: dict[str, tuple[YNode, int]] = {}  # anchor -> (node, expanded size)
        self.open_anchors: set[str] = set()
        self.stack: list[_Frame] = []
        self.total = 0
        self.root: YNode | None = None
        self.resolvers: dict[str | None, list[tuple[str, Any]]] = loader.yaml_implicit_resolvers
        self.wildcards = self.resolvers.get(None, [])
        assert not loader.yaml_path_resolvers, "path resolvers are not supported"

    def error(self, line: int, col: int, message: str) -> None:
        self.diags.error_at(self.ytext.path, line, col, message, self.ytext.line(line))

    def fail(self, mark: Any, message: str) -> None:
        self.error(mark.line + 1, mark.column + 1, message)
        raise _Stop()

    def run(self) -> YNode | None:
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # document start
        get, peek = loader.get_event, loader.peek_event
        scalar, alias, start, end = self.scalar, self.alias, self.start, self.end
        handlers = {
            yaml.ScalarEvent: scalar, yaml.AliasEvent: alias,
            yaml.MappingStartEvent: start, yaml.SequenceStartEvent: start,
            yaml.MappingEndEvent: end, yaml.SequenceEndEvent: end,
        }
        while type(peek()) is not yaml.DocumentEndEvent:
            ev = get()
            handlers[type(ev)](ev)
        get()
        if not loader.check_event(yaml.StreamEndEvent):
            self.fail(get().start_mark, "invalid YAML: expected a single document, found another one")
        return self.root

    def scalar(self, ev: Any) -> None:
        if ev.anchor is not None:
            self.anchor_check(ev)
        mark = ev.start_mark
        value: Any = ev.value
        tag = ev.tag
        if tag is None or tag == "!":
            plain, _quoted = ev.implicit
            tag = _STR_TAG
            if plain:  # what Resolver.resolve does, without its generality (this runs per scalar)
                for candidate, regexp in self.resolvers.get(value[0] if value else "", []) + self.wildcards:
                    if regexp.match(value):
                        tag = candidate
                        break
        if tag != _STR_TAG:
            value = self.construct(ev, tag)
        node = YNode(value, mark.line + 1, mark.column + 1, self.ytext, tag, _NO_KEYS,
                     mark.index, ev.end_mark.index, ev.style or None)
        if ev.anchor is not None:
            self.anchors[ev.anchor] = (node, 1)
        self.grow(1, ev)
        self.attach(node, 1)

    def construct(self, ev: Any, tag: str) -> Any:
        mark = ev.start_mark
        if tag == _INT_TAG and len(ev.value) > _MAX_INT_CHARS:
            self.fail(mark, f"integer with more than {_MAX_INT_CHARS} characters")
        node = ScalarNode(tag, ev.value, mark, ev.end_mark, ev.style)
        constructor = self.loader.yaml_constructors.get(tag)
        try:  # scalars have no children: the constructor directly (construct_object for unknown tags: its error)
            value = constructor(self.loader, node) if constructor is not None else self.loader.construct_object(node)
        except Exception as exc:  # noqa: BLE001 - PyYAML's constructors fail on odd values with any
            # exception (ValueError for 2001-02-30, AttributeError for !!timestamp x): each is this value's error
            self.fail(mark, f"invalid YAML value {ev.value[:40]!r} for {tag.rsplit(':', 1)[-1]}: {exc}")
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            value = str(ev.value)  # dates, binary...: keep the text
        return value

    def alias(self, ev: Any) -> None:
        if ev.anchor in self.open_anchors:
            self.fail(ev.start_mark, f"invalid YAML: alias '*{ev.anchor}' refers to a node that contains it")
        found = self.anchors.get(ev.anchor)
        if found is None:
            self.fail(ev.start_mark, f"invalid YAML: unknown alias '*{ev.anchor}' (no '&{ev.anchor}' before it)")
        assert found is not None
        self.grow(found[1], ev)
        self.attach(*found)

    def start(self, ev: Any) -> None:
        if ev.anchor is not None:
            self.anchor_check(ev)
        if len(self.stack) >= limits.MAX_YAML_DEPTH:
            self.fail(ev.start_mark, f"YAML nested too deeply (more than {limits.MAX_YAML_DEPTH} levels)")
        mapping = type(ev) is yaml.MappingStartEvent
        tag = ev.tag if ev.tag not in (None, "!") else self.loader.resolve(
            MappingNode if mapping else SequenceNode, None, ev.implicit)
        keys: dict[str, YNode] | None = {} if mapping else None
        node = YNode({} if mapping else [], ev.start_mark.line + 1, ev.start_mark.column + 1, self.ytext, tag,
                     keys if keys is not None else _NO_KEYS)
        self.stack.append(_Frame(node, ev.anchor, keys))
        if ev.anchor is not None:
            self.open_anchors.add(ev.anchor)
        self.grow(1, ev)

    def end(self, ev: Any) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (frame.node, frame.size)
        self.attach(frame.node, frame.size)

    def anchor_check(self, ev: Any) -> None:
        if ev.anchor in self.anchors or ev.anchor in self.open_anchors:
            self.fail(ev.start_mark, f"invalid YAML: anchor '&{ev.anchor}' defined twice")

    def grow(self, size: int, ev: Any) -> None:
        self.total += size
        if self.total > limits.MAX_YAML_NODES:
            self.fail(ev.start_mark, f"YAML document too large: more than {limits.MAX_YAML_NODES:,} nodes, "
                                     f"counting each alias as the nodes it stands for (an alias bomb?)")

    def attach(self, node: YNode, size: int) -> None:
        if not self.stack:
            self.root = node
            return
        frame = self.stack[-1]
        frame.size += size
        value = frame.node.value
        if frame.keys is None:
            value.append(node)
        elif frame.key is None:
            frame.key = node
        else:
            key, frame.key = frame.key, None
            if not isinstance(key.value, (str, int, float, bool)) or key.value is None:
                self.error(key.line, key.col, "mapping keys must be scalars")
            else:
                name = str(key.value)
                if name in value:
                    self.error(key.line, key.col, f"duplicate key '{name}'")
                else:
                    value[name] = node
                    frame.keys[name] = key


def load(text: str, path: str, diags: Diagnostics) -> YNode | None:
    """Parse one YAML document; problems go to ``diags`` (None on error)."""
    ytext = YamlText(text, path)
    loader: Any = None
    try:
        loader = _LOADER(text)
        root = _Builder(loader, ytext, diags).run()
    except _Stop:
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = exc.problem or exc.context or "invalid YAML"
        diags.error_at(path, line, col, f"invalid YAML: {message}", ytext.line(line))
        return None
    except yaml.reader.ReaderError as exc:
        index = exc.position
        if _C_LOADER:  # libyaml counts bytes here (characters everywhere else)
            index = len(text.encode("utf-8", "surrogatepass")[:index].decode("utf-8", "replace"))
        line, col = ytext.position(index)
        char = exc.character
        code = ord(char) if isinstance(char, str) else int(char)
        diags.error_at(path, line, col, f"invalid YAML: character U+{code:04X} is not allowed",
                       ytext.line(line))
        return None
    except yaml.YAMLError as exc:
        diags.error_at(path, 1, 1, f"invalid YAML: {exc}")
        return None
    except UnicodeError as exc:  # text that is not encodable (lone surrogates), given by a caller
        diags.error_at(path, 1, 1, f"invalid YAML: {exc}")
        return None
    finally:
        if loader is not None:
            loader.dispose()
    return root


# --- value index -> file index ------------------------------------------------

def _index_map(text: str, node: YNode, value: str) -> Sequence[int]:
    """File character index of each value character, plus one past the end."""
    if node.start < 0:
        return ()
    start, end, style = node.start, node.end, node.style
    raw = text[start:end]
    if style in (None, "'", '"'):
        body, base = (raw[1:-1], start + 1) if style else (raw, start)
        special = "\n\\" if style == '"' else "\n'" if style == "'" else "\n"
        if body == value and not any(c in body for c in special):
            return range(base, base + len(value) + 1)  # one line, no escapes: the identity
    try:
        if style in ("|", ">"):
            got, idx = _block(raw, start)
        else:
            got, idx = _flow(raw, start, style)
    except (IndexError, ValueError):
        got, idx = "", array("q")
    if got != value:
        pos = raw.find(value) if value else -1
        if pos >= 0:
            return range(start + pos, start + pos + len(value) + 1)
        log.debug("position map mismatch for %r (%r)", value[:80], got[:80])
        return (start,)
    idx.append(idx[-1] + 1 if idx else start)
    return idx


# Positions are kept as 8-byte integers (array "q"), text per line, not per
# character: mapping a 4 MiB expression costs tens of megabytes, not hundreds.

def _flow(raw: str, base: int, style: str | None) -> tuple[str, array[int]]:
    """Plain, single- or double-quoted scalar (with line folding)."""
    if style in ("'", '"'):
        raw, base = raw[1:-1], base + 1
    lines: list[tuple[int, str]] = []
    pos = 0
    for piece in raw.split("\n"):
        lines.append((base + pos, piece))
        pos += len(piece) + 1
    out: list[str] = []
    idx: array[int] = array("q")
    escaped_break = False
    empties = 0
    last = len(lines) - 1
    for n, (at, piece) in enumerate(lines):
        piece = piece.rstrip("\r")
        lead = 0
        if n > 0:
            lead = len(piece) - len(piece.lstrip(" \t"))
        body = piece[lead:]
        this_escaped = False
        if style == '"' and n < last and _ends_with_escape(body):
            body, this_escaped = body[:-1], True
        elif n < last:
            body = body.rstrip(" \t")
        if 0 < n < last and not body and not this_escaped:
            empties += 1
            continue
        if n > 0:
            if escaped_break:
                pass
            elif empties:
                out.append("\n" * empties)
                idx.extend([at - 1] * empties)
            else:
                out.append(" ")
                idx.append(at - 1)
        empties = 0
        _emit(body, at + lead, style, out, idx)
        escaped_break = this_escaped
    return "".join(out), idx


def _ends_with_escape(body: str) -> bool:
    run = len(body) - len(body.rstrip("\\"))
    return run % 2 == 1


def _emit(body: str, at: int, style: str | None, out: list[str], idx: array[int]) -> None:
    if (style == "'" and "'" not in body) or (style == '"' and "\\" not in body) or style not in ("'", '"'):
        out.append(body)  # nothing to decode on this line
        idx.extend(range(at, at + len(body)))
        return
    i = 0
    while i < len(body):
        c = body[i]
        if style == "'" and c == "'" and body[i + 1 : i + 2] == "'":
            out.append("'")
            idx.append(at + i)
            i += 2
        elif style == '"' and c == "\\":
            e = body[i + 1]
            if e in _HEX_ESCAPES:
                n = _HEX_ESCAPES[e]
                out.append(chr(int(body[i + 2 : i + 2 + n], 16)))
                idx.append(at + i)
                i += 2 + n
            else:
                out.append(_ESCAPES[e])
                idx.append(at + i)
                i += 2
        else:
            out.append(c)
            idx.append(at + i)
            i += 1


def _block(raw: str, base: int) -> tuple[str, array[int]]:
    """Literal (``|``) or folded (``>``) block scalar."""
    header_end = raw.index("\n")
    header = raw[:header_end].split("#", 1)[0].strip()
    folded = header[0] == ">"
    chomp = "+" if "+" in header else "-" if "-" in header else ""
    if any(c.isdigit() for c in header):
        raise ValueError("explicit indentation indicator")
    lines: list[tuple[int, str]] = []
    pos = header_end + 1
    for piece in raw[header_end + 1 :].split("\n"):
        lines.append((base + pos, piece.rstrip("\r")))
        pos += len(piece) + 1
    indent = next((len(p) - len(p.lstrip(" ")) for _, p in lines if p.strip()), 0)
    content: list[tuple[int, str] | None] = []  # None: an empty line
    for at, piece in lines:
        if not piece.strip() and len(piece) <= indent:
            content.append(None)
        elif len(piece) - len(piece.lstrip(" ")) < indent:
            break
        else:
            content.append((at + indent, piece[indent:]))
    while content and content[-1] is None:
        content.pop()
    out: list[str] = []
    idx: array[int] = array("q")
    prev: tuple[int, str] | None = None
    empties = 0
    for item in content:
        if item is None:
            empties += 1
            continue
        at, body = item
        if prev is not None:
            p_at, p_body = prev
            brk = p_at + len(p_body)
            more = body[:1] in (" ", "\t") or p_body[:1] in (" ", "\t")
            if not folded or more:
                out.append("\n" * (empties + 1))
                idx.extend([brk] * (empties + 1))
            elif empties:
                out.append("\n" * empties)
                idx.extend([brk] * empties)
            else:
                out.append(" ")
                idx.append(brk)
        elif empties:
            out.append("\n" * empties)
            idx.extend([at] * empties)
        empties = 0
        out.append(body)
        idx.extend(range(at, at + len(body)))
        prev = item
    if prev is not None and chomp != "-":
        brk = prev[0] + len(prev[1])
        out.append("\n")
        idx.append(brk)
        if chomp == "+":
            extra = _trailing_breaks(raw, prev, base)
            out.append("\n" * extra)
            idx.extend([brk] * extra)
    return "".join(out), idx


def _trailing_breaks(raw: str, last: tuple[int, str], base: int) -> int:
    rest = raw[last[0] - base + len(last[1]) :]
    return max(0, rest.count("\n") - 1)

"""YAML loading that keeps the line and column of every node.

:func:`load` returns a tree of :class:`YNode`. A string scalar can map each
character of its *value* back to the file, through plain multi-line
folding, single and double quotes (escapes included) and block scalars
(``|``, ``>``, ``>-``...), so an error inside a SECL expression points at the
exact character in the policy file. The mapping is checked against PyYAML's
own value; when they disagree (an exotic form) positions fall back to the
start of the scalar rather than being wrong.
"""
from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Diagnostics, Source

log = logging.getLogger(__name__)

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


@dataclass(eq=False)
class YNode:
    """A YAML node: ``value`` is a dict of str -> YNode, a list of YNode or a scalar."""

    value: Any
    line: int
    col: int
    file: YamlText
    tag: str = ""
    keys: dict[str, YNode] = field(default_factory=dict)  # mapping key nodes
    _node: Node | None = None
    _index_map: list[int] | None = None

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
        """The Python value, positions dropped."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value

    def locate(self, offset: int) -> tuple[int, int]:
        """(line, col) in the file of character ``offset`` of a string value."""
        if self._index_map is None:
            self._index_map = _index_map(self.file.text, self._node, str(self.value))
        if not self._index_map:
            return self.line, self.col
        offset = max(0, min(offset, len(self._index_map) - 1))
        return self.file.position(self._index_map[offset])

    def source(self) -> Source:
        """This string value as a SECL :class:`Source` mapped to the file."""
        return Source(str(self.value), self.file.path, self.file.lines, self.locate)


def load(text: str, path: str, diags: Diagnostics) -> YNode | None:
    """Parse one YAML document; problems go to ``diags`` (None on error)."""
    ytext = YamlText(text, path)
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
        if root is None:
            return None
        return _convert(loader, root, ytext, diags)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = exc.problem or exc.context or "invalid YAML"
        diags.error_at(path, line, col, f"invalid YAML: {message}", _line(ytext, line))
        return None
    except yaml.reader.ReaderError as exc:
        line, col = ytext.position(exc.position)
        diags.error_at(path, line, col, f"invalid YAML: character {exc.character:#x} is not allowed",
                       _line(ytext, line))
        return None
    except yaml.YAMLError as exc:
        diags.error_at(path, 1, 1, f"invalid YAML: {exc}")
        return None
    except RecursionError:
        diags.error_at(path, 1, 1, "invalid YAML: nested too deeply")
        return None
    finally:
        if loader is not None:
            loader.dispose()


def _line(ytext: YamlText, line: int) -> str:
    return ytext.lines[line - 1] if 0 < line <= len(ytext.lines) else ""


def _convert(loader: yaml.SafeLoader, node: Node, ytext: YamlText, diags: Diagnostics) -> YNode:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, MappingNode):
        values: dict[str, YNode] = {}
        keys: dict[str, YNode] = {}
        for key_node, value_node in node.value:
            key = _convert(loader, key_node, ytext, diags)
            if not isinstance(key.value, (str, int, float, bool)) or key.value is None:
                diags.error_at(ytext.path, key.line, key.col, "mapping keys must be scalars", _line(ytext, key.line))
                continue
            name = str(key.value)
            if name in values:
                diags.error_at(ytext.path, key.line, key.col, f"duplicate key '{name}'", _line(ytext, key.line))
                continue
            values[name] = _convert(loader, value_node, ytext, diags)
            keys[name] = key
        return YNode(values, line, col, ytext, node.tag, keys, node)
    if isinstance(node, SequenceNode):
        items = [_convert(loader, item, ytext, diags) for item in node.value]
        return YNode(items, line, col, ytext, node.tag, _node=node)
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, (str, int, float, bool)) and value is not None:
        value = str(node.value)  # dates, binary...: keep the text
    return YNode(value, line, col, ytext, node.tag, _node=node)


# --- value index -> file index ------------------------------------------------

def _index_map(text: str, node: Node | None, value: str) -> list[int]:
    """File character index of each value character, plus one past the end."""
    if not isinstance(node, ScalarNode):
        return []
    start, end = node.start_mark.index, node.end_mark.index
    raw = text[start:end]
    style = node.style
    try:
        if style in ("|", ">"):
            got, idx = _block(raw, start)
        else:
            got, idx = _flow(raw, start, style)
    except (IndexError, ValueError):
        got, idx = "", []
    if got != value:
        pos = raw.find(value) if value else -1
        if pos >= 0:
            return list(range(start + pos, start + pos + len(value) + 1))
        log.debug("position map mismatch for %r (%r)", value, got)
        return [start]
    return idx + [idx[-1] + 1 if idx else start]


def _flow(raw: str, base: int, style: str | None) -> tuple[str, list[int]]:
    """Plain, single- or double-quoted scalar (with line folding)."""
    if style in ("'", '"'):
        raw, base = raw[1:-1], base + 1
    lines: list[tuple[int, str]] = []
    pos = 0
    for piece in raw.split("\n"):
        lines.append((base + pos, piece))
        pos += len(piece) + 1
    out: list[str] = []
    idx: list[int] = []
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


def _emit(body: str, at: int, style: str | None, out: list[str], idx: list[int]) -> None:
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


def _block(raw: str, base: int) -> tuple[str, list[int]]:
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
    idx: list[int] = []
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
        out.extend(body)
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

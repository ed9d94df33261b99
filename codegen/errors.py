"""Diagnostics: errors and warnings with file, line and column as attributes.

A :class:`Source` is a piece of SECL text (an expression) together with the
way its character offsets map back to a file (an expression may come from a
multi-line, quoted or folded YAML scalar). Every stage reports through a
:class:`Diagnostics` collector, so all problems are reported, not just the
first one — up to :data:`codegen.limits.MAX_DIAGNOSTICS`; past that they
are counted, not kept, and a source line is kept only around its column, so
a broken generated policy with a megabyte-long line costs little to report.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable, Iterator

from .limits import MAX_DIAGNOSTICS, MAX_SOURCE_LINE_CHARS

Locator = Callable[[int], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Span:
    """Half-open range of character offsets inside an expression's text."""

    start: int
    end: int


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem, located in a file (``line`` and ``col`` are 1-based)."""

    severity: Severity
    message: str
    file: str
    line: int
    col: int
    source_line: str = ""  # the line, or the part of it around ``col`` (see :func:`excerpt`)
    source_col: int = 0    # 1-based column of the caret in ``source_line`` (0: ``col``)
    code: str = ""         # what kind of problem, for counting (codegen.policy.SKIP_REASONS)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def header(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.severity.value}: {self.message}"

    def format(self) -> str:
        """``PATH:LINE:COL: error: MESSAGE``, the source line and a caret."""
        if not self.source_line:
            return self.header()
        caret = self.source_col or self.col
        # Keep tabs so the caret lines up whatever the terminal's tab width.
        pad = "".join(c if c == "\t" else " " for c in self.source_line[: caret - 1])
        return f"{self.header()}\n{self.source_line}\n{pad}^"

    def __str__(self) -> str:
        return self.format()


class Source:
    """SECL text plus the mapping of its offsets to file positions.

    ``locate`` maps an offset inside ``text`` to a 1-based (line, col) inside
    ``file_lines``; without it the text itself is the file (``<expr>``).
    """

    __slots__ = ("text", "name", "file_lines", "_locate")

    def __init__(
        self,
        text: str,
        name: str = "<expr>",
        file_lines: list[str] | None = None,
        locate: Locator | None = None,
    ) -> None:
        self.text = text
        self.name = name
        self.file_lines = file_lines if file_lines is not None else text.split("\n")
        self._locate = locate

    def position(self, offset: int) -> tuple[int, int]:
        offset = max(0, min(offset, len(self.text)))
        if self._locate is not None:
            return self._locate(offset)
        before = self.text[:offset]
        line = before.count("\n") + 1
        return line, offset - (before.rfind("\n") + 1) + 1

    def diagnostic(self, severity: Severity, offset: int, message: str, code: str = "") -> Diagnostic:
        line, col = self.position(offset)
        text = self.file_lines[line - 1] if 0 < line <= len(self.file_lines) else ""
        return make(severity, message, self.name, line, col, text, code)


def excerpt(text: str, col: int) -> tuple[str, int]:
    """The part of a source line shown under a diagnostic, and the caret's
    column in it: the whole line when short, else a window around ``col``
    with ``...`` marking what was cut."""
    if len(text) <= MAX_SOURCE_LINE_CHARS:
        return text.rstrip("\r\n"), 0
    half = MAX_SOURCE_LINE_CHARS // 2
    start = max(0, min(col - 1 - half, len(text) - MAX_SOURCE_LINE_CHARS))
    end = start + MAX_SOURCE_LINE_CHARS
    head = "..." if start > 0 else ""
    tail = "..." if end < len(text) else ""
    shown = head + text[start:end].rstrip("\r\n") + tail
    return shown, col - start + len(head)


def make(severity: Severity, message: str, file: str, line: int, col: int, source_line: str = "",
         code: str = "") -> Diagnostic:
    """A :class:`Diagnostic`, its source line cut to an excerpt."""
    shown, caret = excerpt(source_line, col) if source_line else ("", 0)
    return Diagnostic(severity, message, file, line, col, shown, caret, code)


@dataclass
class Diagnostics:
    """Collects every diagnostic of a run, in the order they were found
    (the first :data:`codegen.limits.MAX_DIAGNOSTICS`; the rest counted)."""

    items: list[Diagnostic] = field(default_factory=list)
    count: int = 0         # every diagnostic added, kept or not
    error_count: int = 0   # every error added, kept or not

    def __post_init__(self) -> None:
        self.count = len(self.items)
        self.error_count = sum(1 for d in self.items if d.is_error)

    def add(self, diag: Diagnostic) -> None:
        self.count += 1
        if diag.is_error:
            self.error_count += 1
        if len(self.items) < MAX_DIAGNOSTICS:
            self.items.append(diag)

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        for d in diags:
            self.add(d)

    def error(self, source: Source, offset: int, message: str, code: str = "") -> None:
        self.add(source.diagnostic(Severity.ERROR, offset, message, code))

    def warning(self, source: Source, offset: int, message: str) -> None:
        self.add(source.diagnostic(Severity.WARNING, offset, message))

    def error_at(self, file: str, line: int, col: int, message: str, source_line: str = "",
                 code: str = "") -> None:
        self.add(make(Severity.ERROR, message, file, line, col, source_line, code))

    def warning_at(self, file: str, line: int, col: int, message: str, source_line: str = "") -> None:
        self.add(make(Severity.WARNING, message, file, line, col, source_line))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if not d.is_error]

    @property
    def dropped(self) -> int:
        return self.count - len(self.items)

    @property
    def has_errors(self) -> bool:
        return self.error_count > 0

    def sorted(self) -> list[Diagnostic]:
        """Deduplicated, in file order; a last line counts those not kept."""
        seen: dict[tuple[object, ...], Diagnostic] = {}
        for d in self.items:
            seen.setdefault((d.file, d.line, d.col, d.severity, d.message), d)
        out = sorted(seen.values(), key=lambda d: (d.file, d.line, d.col))
        if self.dropped:
            dropped_errors = self.error_count - sum(1 for d in self.items if d.is_error)
            last = self.items[-1]
            out.append(Diagnostic(Severity.ERROR if dropped_errors else Severity.WARNING,
                                  f"{self.dropped:,} more problem(s) not shown ({dropped_errors:,} error(s)); "
                                  f"fix the first {len(self.items):,} and run again", last.file, last.line, last.col))
        return out

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return self.count

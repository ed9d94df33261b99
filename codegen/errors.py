"""Diagnostics: errors and warnings with file, line and column as attributes.

A :class:`Source` is a piece of SECL text (an expression) together with the
way its character offsets map back to a file (an expression may come from a
multi-line, quoted or folded YAML scalar). Every stage reports through a
:class:`Diagnostics` collector, so all problems are reported, not just the
first one.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable, Iterator

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
    source_line: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def header(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.severity.value}: {self.message}"

    def format(self) -> str:
        """``PATH:LINE:COL: error: MESSAGE``, the source line and a caret."""
        if not self.source_line:
            return self.header()
        # Keep tabs so the caret lines up whatever the terminal's tab width.
        pad = "".join(c if c == "\t" else " " for c in self.source_line[: self.col - 1])
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

    def diagnostic(self, severity: Severity, offset: int, message: str) -> Diagnostic:
        line, col = self.position(offset)
        text = self.file_lines[line - 1] if 0 < line <= len(self.file_lines) else ""
        return Diagnostic(severity, message, self.name, line, col, text.rstrip("\r\n"))


@dataclass
class Diagnostics:
    """Collects every diagnostic of a run, in the order they were found."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diag: Diagnostic) -> None:
        self.items.append(diag)

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        self.items.extend(diags)

    def error(self, source: Source, offset: int, message: str) -> None:
        self.items.append(source.diagnostic(Severity.ERROR, offset, message))

    def warning(self, source: Source, offset: int, message: str) -> None:
        self.items.append(source.diagnostic(Severity.WARNING, offset, message))

    def error_at(self, file: str, line: int, col: int, message: str, source_line: str = "") -> None:
        self.items.append(Diagnostic(Severity.ERROR, message, file, line, col, source_line))

    def warning_at(self, file: str, line: int, col: int, message: str, source_line: str = "") -> None:
        self.items.append(Diagnostic(Severity.WARNING, message, file, line, col, source_line))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if not d.is_error]

    def has_errors_since(self, index: int) -> bool:
        return any(d.is_error for d in self.items[index:])

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        """Deduplicated, in file order."""
        seen: dict[tuple[object, ...], Diagnostic] = {}
        for d in self.items:
            seen.setdefault((d.file, d.line, d.col, d.severity, d.message), d)
        return sorted(seen.values(), key=lambda d: (d.file, d.line, d.col))

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

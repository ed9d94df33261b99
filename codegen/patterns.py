"""String matchers: patterns (``~"..."``), globs (on ``.path`` fields) and regexes.

- pattern: ``*`` matches any run of characters, ``/`` included;
- glob: ``*`` stays inside one path segment; ``**`` only as the whole last
  segment, matching everything below (``/**`` matches every absolute path);
- regex: Python ``re`` syntax, matched anywhere in the value (unanchored
  search, like the reference agent's ``MatchString``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Callable


@dataclass(frozen=True, slots=True)
class StrMatcher:
    kind: str  # "pattern" | "glob" | "regex"
    text: str
    match: Callable[[str], bool] = field(compare=False, repr=False, hash=False)

    def __str__(self) -> str:
        prefix = "r" if self.kind == "regex" else "~"
        return f'{prefix}"{self.text}"'


def _wildcard_regex(text: str, star: str) -> str:
    return "".join(star if c == "*" else re.escape(c) for c in text)


def glob_error(text: str) -> tuple[int, str] | None:
    """(index in ``text``, message) when ``text`` is not a valid glob."""
    segments = text.split("/")
    index = 0
    for i, seg in enumerate(segments):
        if "**" in seg and (seg != "**" or i != len(segments) - 1):
            return index + seg.index("**"), "'**' is allowed only as the whole last path segment"
        index += len(seg) + 1
    return None


def _glob_regex(text: str) -> str:
    if text.endswith("/**") or text == "**":
        head = text[:-2]
        return _wildcard_regex(head, "[^/]*") + ".*"
    return _wildcard_regex(text, "[^/]*")


def _fast(rx: re.Pattern[str], text: str, star: str) -> Callable[[str], bool]:
    """Cheaper matchers for the common shapes (``/etc/*``, ``*.log``, literal)."""
    if "*" not in text:
        return _equals(text)
    if text.count("*") == 1 and text.endswith("*") and star == ".*":
        return _prefix(text[:-1])
    return _full(rx)


def _equals(text: str) -> Callable[[str], bool]:
    return lambda s: s == text


def _prefix(prefix: str) -> Callable[[str], bool]:
    return lambda s: s.startswith(prefix)


def _one_segment_below(prefix: str) -> Callable[[str], bool]:
    n = len(prefix)
    return lambda s: s.startswith(prefix) and "/" not in s[n:]


def _full(rx: re.Pattern[str]) -> Callable[[str], bool]:
    fullmatch = rx.fullmatch
    return lambda s: fullmatch(s) is not None


def make_pattern(text: str) -> StrMatcher:
    rx = re.compile(_wildcard_regex(text, ".*"), re.S)
    return StrMatcher("pattern", text, _fast(rx, text, ".*"))


def make_glob(text: str) -> StrMatcher:
    """A glob matcher; call :func:`glob_error` first."""
    rx = re.compile(_glob_regex(text), re.S)
    if text.endswith("/**") and "*" not in text[:-3]:
        return StrMatcher("glob", text, _prefix(text[:-2]))
    if text.count("*") == 1 and text.endswith("/*"):
        return StrMatcher("glob", text, _one_segment_below(text[:-1]))
    return StrMatcher("glob", text, _fast(rx, text, "[^/]*"))


def make_regex(text: str) -> StrMatcher:
    """A regex matcher; raises ``re.error`` (with ``pos``) when invalid."""
    search = re.compile(text).search
    return StrMatcher("regex", text, lambda s: search(s) is not None)


def as_glob(matcher: StrMatcher) -> StrMatcher:
    return make_glob(matcher.text) if matcher.kind == "pattern" else matcher


def glob_basename(text: str) -> str:
    """The last segment of a glob (``/etc/*/passwd`` -> ``passwd``)."""
    return text.rsplit("/", 1)[-1]

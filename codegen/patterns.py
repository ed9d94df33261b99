"""String matchers: patterns (``~"..."``), globs (on ``.path`` fields) and regexes.

- pattern: ``*`` matches any run of characters, ``/`` included;
- glob: ``*`` stays inside one path segment; a segment that is exactly
  ``**`` matches whole segments: as the last segment, everything below
  (``/etc/**`` matches ``/etc/`` and every path under it; ``/**`` matches
  every absolute path); elsewhere, zero or more segments (``/a/**/b``
  matches ``/a/b``, ``/a/x/b``, ``/a/x/y/b``). ``**`` may appear once per
  glob and only as a whole segment (``/a/x**/b`` is an error); see
  docs/secl.md "Strings, patterns, globs, regexes";
- regex: Python ``re`` syntax, matched anywhere in the value (unanchored
  search, like the reference agent's ``MatchString``).

Patterns and globs are matched without a backtracking regex: a value
matches ``p0*p1*...*pk`` when it starts with ``p0``, ends with ``pk`` and
holds the other pieces in order (leftmost search is exact when ``*`` is the
only wildcard), so ``"*a*a*a*a*b"`` costs a few ``str.find`` calls on any
path instead of exponential time; globs match segment by segment, and a
mid-path ``**`` splits a glob into the segments before it (matched from the
path's start) and after it (matched from the path's end), so a glob costs
one pass over the path's segments.
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
        return f'{prefix}"{_unescaped(self.text)}"'


Pieces = tuple[str, ...]

# A `*` that is no wildcard: what a value interpolated into a pattern or glob
# (`~"/home/%{process.user}/*"`) holds is matched as it is, so the value's own
# `*` are written as this (no path or SECL string holds a NUL) and matched as `*`.
LITERAL_STAR = "\0"


def literal(text: str) -> str:
    """``text`` to splice into a pattern's or glob's text, matched as it is."""
    return text.replace("*", LITERAL_STAR)


def _unescaped(text: str) -> str:
    return text.replace(LITERAL_STAR, "*")


def pieces(text: str) -> Pieces:
    """``text`` split on its wildcards: ``"a*b*"`` -> ``("a", "b", "")``."""
    return tuple(_unescaped(p) for p in text.split("*"))


def wildcard_match(parts: Pieces, value: str) -> bool:
    """Does ``value`` match the wildcard pattern split into ``parts``?"""
    if len(parts) == 1:
        return value == parts[0]
    first, last = parts[0], parts[-1]
    end = len(value) - len(last)
    if end < len(first) or not value.startswith(first) or not value.endswith(last):
        return False
    pos = len(first)
    for part in parts[1:-1]:
        found = value.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


def glob_error(text: str) -> tuple[int, str] | None:
    """(index in ``text``, message) when ``text`` is not a valid glob."""
    index = 0
    globstar = False
    for seg in text.split("/"):
        if "**" in seg:
            if seg != "**":
                return (index + seg.index("**"),
                        "'**' must be a whole path segment ('/a/**/b'); use '*' within a segment")
            if globstar:
                return index, "'**' may appear only once in a glob"
            globstar = True
        index += len(seg) + 1
    return None


def _segments_match(globs: list[Pieces], got: list[str]) -> bool:
    return all(wildcard_match(p, g) for p, g in zip(globs, got))


def _glob(text: str) -> Callable[[str], bool]:
    """A glob's matcher: ``*`` within one segment, ``**`` over whole segments."""
    if text == "**":
        return lambda s: True
    segments = text.split("/")
    if "**" in segments[:-1]:
        at = segments.index("**")
        head = [pieces(seg) for seg in segments[:at]]
        tail = [pieces(seg) for seg in segments[at + 1:]]
        least = len(head) + len(tail)

        def match_across(s: str) -> bool:
            got = s.split("/")
            return (len(got) >= least and _segments_match(head, got[:len(head)])
                    and _segments_match(tail, got[len(got) - len(tail):]))
        return match_across
    below = segments[-1] == "**"
    parts = [pieces(seg) for seg in (segments[:-1] if below else segments)]
    n = len(parts)
    if below:
        def match_below(s: str) -> bool:
            got = s.split("/", n)
            return len(got) > n and _segments_match(parts, got)
        return match_below

    def match(s: str) -> bool:
        got = s.split("/")
        return len(got) == n and _segments_match(parts, got)
    return match


def _equals(text: str) -> Callable[[str], bool]:
    text = _unescaped(text)
    return lambda s: s == text


def _prefix(prefix: str) -> Callable[[str], bool]:
    prefix = _unescaped(prefix)
    return lambda s: s.startswith(prefix)


def _one_segment_below(prefix: str) -> Callable[[str], bool]:
    prefix = _unescaped(prefix)
    n = len(prefix)
    return lambda s: s.startswith(prefix) and "/" not in s[n:]


def make_pattern(text: str) -> StrMatcher:
    if "*" not in text:
        return StrMatcher("pattern", text, _equals(text))
    if text.count("*") == 1 and text.endswith("*"):
        return StrMatcher("pattern", text, _prefix(text[:-1]))
    parts = pieces(text)
    return StrMatcher("pattern", text, lambda s: wildcard_match(parts, s))


def make_glob(text: str) -> StrMatcher:
    """A glob matcher; call :func:`glob_error` first."""
    if "*" not in text:
        return StrMatcher("glob", text, _equals(text))
    if text.endswith("/**") and "*" not in text[:-3]:
        return StrMatcher("glob", text, _prefix(text[:-2]))
    if text.count("*") == 1 and text.endswith("/*"):
        return StrMatcher("glob", text, _one_segment_below(text[:-1]))
    return StrMatcher("glob", text, _glob(text))


def make_regex(text: str) -> StrMatcher:
    """A regex matcher; raises ``re.error`` (with ``pos``) when invalid."""
    search = re.compile(text).search
    return StrMatcher("regex", text, lambda s: search(s) is not None)


def as_glob(matcher: StrMatcher) -> StrMatcher:
    return make_glob(matcher.text) if matcher.kind == "pattern" else matcher


def glob_basename(text: str) -> str:
    """The last segment of a glob (``/etc/*/passwd`` -> ``passwd``); every path the
    glob matches has it as its basename (``/a/**/token`` -> ``token``) when it
    has no ``*``."""
    return text.rsplit("/", 1)[-1]


def literal_dir_prefix(value: str | StrMatcher) -> str | None:
    """The literal directory prefix (up to and including a ``/``) that every
    path ``value`` matches starts with: an exact path's directory
    (``/etc/passwd`` -> ``/etc/``), the directory part of a glob's or
    pattern's text before its first wildcard (``/etc/**`` -> ``/etc/``,
    ``/home/*/.ssh/*`` -> ``/home/``). None for a regex or a value that is
    not an absolute path."""
    if isinstance(value, StrMatcher):
        if value.kind == "regex":
            return None
        head = _unescaped(value.text.split("*", 1)[0])
    else:
        head = value
    if not head.startswith("/"):
        return None
    return head[: head.rindex("/") + 1]

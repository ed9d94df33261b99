"""``agent_version`` constraints of rules and macros (``'>=7.65 <7.70'``).

The reference agent skips a rule or macro whose constraint its own version
does not satisfy. This agent declares the reference-agent version it
emulates (:data:`EMULATED_VERSION`, ``--agent-version`` to change it) and
applies the constraints against it, so a policy that ships one rule for old
agents and its replacement for new ones loads exactly one of them.

Syntax (semantic-version constraints as the reference agent writes them):
terms joined by spaces or commas must all hold; groups joined by ``||``
are alternatives. A term is an operator (``=``, ``==``, ``!=``, ``>``,
``>=``, ``<``, ``<=``, ``~`` same minor, ``^`` same major; none means
``=``) and a version of one to three numbers (missing ones are 0) with an
optional ``-pre``/``+build`` suffix, ignored. ``x``/``*`` in a version
matches anything in that place and after.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

EMULATED_VERSION = "7.71.0"
"""The reference-agent version whose ``agent_version`` constraints this agent
applies by default: the newest whose default policy's constructs it supports
(docs/secl.md "Compatibility")."""

Version = tuple[int, int, int]

_TERM = re.compile(r"\s*(==|=|!=|>=|<=|>|<|~>|~|\^)?\s*v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?"
                   r"(?:[-+][0-9A-Za-z.+-]*)?\s*")


class VersionError(ValueError):
    """A constraint or version that does not parse; the message says where."""


def parse_version(text: str) -> Version:
    """``"7.65"`` -> ``(7, 65, 0)``; a ``-rc.1``/``+build`` suffix is dropped."""
    m = re.fullmatch(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+][0-9A-Za-z.+-]*)?\s*", text)
    if m is None:
        raise VersionError(f"invalid version {text!r} (expected MAJOR[.MINOR[.PATCH]], e.g. 7.71.0)")
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))


@dataclass(frozen=True, slots=True)
class _Term:
    op: str
    version: Version
    parts: int  # how many numbers were given before a wildcard (0-3)

    def holds(self, v: Version) -> bool:
        if self.parts < 3 and self.op in ("=", "!="):  # 7.65 / 7.x: a range
            equal = v[: self.parts] == self.version[: self.parts]
            return equal if self.op == "=" else not equal
        if self.op == "=":
            return v == self.version
        if self.op == "!=":
            return v != self.version
        if self.op == ">":
            return v > self.version
        if self.op == ">=":
            return v >= self.version
        if self.op == "<":
            return v < self.version
        if self.op == "<=":
            return v <= self.version
        if self.op == "~":  # same major.minor (same major when only the major is given)
            keep = 1 if self.parts == 1 else 2
            return v >= self.version and v[:keep] == self.version[:keep]
        # "^": same major (same minor for 0.x)
        keep = 2 if self.version[0] == 0 and self.parts > 1 else 1
        return v >= self.version and v[:keep] == self.version[:keep]


@dataclass(frozen=True, slots=True)
class Constraint:
    text: str
    groups: tuple[tuple[_Term, ...], ...]  # OR of ANDs

    def allows(self, version: Version) -> bool:
        return any(all(t.holds(version) for t in group) for group in self.groups)


def parse_constraint(text: str) -> Constraint:
    """Parse ``text``; :class:`VersionError` saying what is wrong."""
    if not text.strip():
        raise VersionError("empty agent_version constraint")
    groups = []
    for alternative in text.split("||"):
        terms = []
        rest = alternative.replace(",", " ")
        pos = 0
        while pos < len(rest):
            if rest[pos:].strip() == "":
                break
            m = _TERM.match(rest, pos)
            if m is None or m.end() == pos:
                raise VersionError(f"invalid agent_version constraint {text!r} at {rest[pos:].strip()[:20]!r} "
                                   "(expected e.g. '>= 7.65', '>=7.65 <7.70')")
            numbers = [g for g in m.groups()[1:]]
            given = 0
            values = []
            for n in numbers:
                if n is None or n in "xX*":
                    break
                given += 1
                values.append(int(n))
            values += [0] * (3 - len(values))
            op = {"==": "=", "~>": "~", None: "="}.get(m.group(1), m.group(1))
            if given == 0 and op not in ("=",):
                raise VersionError(f"invalid agent_version constraint {text!r}: a wildcard needs '='")
            terms.append(_Term(op, (values[0], values[1], values[2]), given))
            pos = m.end()
        if not terms:
            raise VersionError(f"invalid agent_version constraint {text!r}: an empty alternative")
        groups.append(tuple(terms))
    return Constraint(text, tuple(groups))


def add_agent_version(p: argparse.ArgumentParser) -> None:
    """``--agent-version``, shared by ``rulec validate`` and ``rsagent run``."""
    p.add_argument("--agent-version", default=EMULATED_VERSION, metavar="VERSION", type=_version_arg,
                   help="reference-agent version whose agent_version constraints apply "
                        f"(default {EMULATED_VERSION})")


def _version_arg(text: str) -> str:
    try:
        parse_version(text)
    except VersionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text

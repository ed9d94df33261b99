"""Every limit on what a policy may hold, in one place (docs/secl.md "Limits").

A policy is hostile input: it may come from a fetched bundle, a generator or
many editors, and the agent reads it as root. Each limit below bounds the
time or memory one stage can spend, so that no policy can hang, exhaust or
crash `rulec` or `rsagent` (every input is either accepted within these
bounds or refused with a ``PATH:LINE:COL: error:``). The numbers are far
above what real policies need (the reference agent's default policy is
about 150 KB, its largest list a few hundred values) and were chosen so
that a policy at every limit at once still validates in a few seconds
(bench/bench_limits.py measures it; bench/README.md has the figures).
"""
from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB

# --- files and YAML --------------------------------------------------------------
MAX_POLICY_BYTES = 8 * MIB
"""Size of one policy (or test case) file."""

MAX_YAML_NODES = 300_000
"""Nodes (scalars, lists, mappings) of one YAML document, each alias
counting as the nodes it stands for: aliases are shared, never copied, but
whatever reads the tree may walk it whole, so repetition through aliases is
bounded like text."""

MAX_YAML_DEPTH = 64
"""Nesting of YAML mappings and sequences."""

# --- SECL ------------------------------------------------------------------------
MAX_EXPRESSION_CHARS = MAX_POLICY_BYTES
"""Characters of one SECL expression (a rule's, a macro's or a filter's)."""

MAX_LIST_ITEMS = 250_000
"""Elements of all the lists of one load together: array literals
(``in [...]``) and list macros (``values:``). A list of literals is parsed
by one regular expression, about 4 µs per element end to end."""

MAX_STRING_CHARS = 4096
"""Characters of one string, pattern or regex literal (PATH_MAX)."""

MAX_NESTING_DEPTH = 100
"""Nesting of an expression; a chain of one logical operator
(``a || b || c ...``) counts as one level, parentheses as none."""

MAX_PARSE_STACK = 10 * MAX_NESTING_DEPTH
"""Open parentheses, brackets and pending operators while parsing (parentheses
add no nesting level, but each one waits on the parser's stack)."""

MAX_EXPANDED_NODES = 2_000_000
"""Size of every rule, macro and filter expression together once macros are
expanded: syntax-tree nodes plus array elements. A macro is analysed once
and shared, but each use is evaluated, compiled and partially evaluated
again, so a chain of macros each using the previous one twice would
otherwise double the work at every step."""

MAX_TOKENS = 100_000
"""Tokens of all the expressions of one load together (rules, macros, host
filters): each identifier, operator and literal is one, and so is a list of
literals ``["a", "b", 3]`` (its elements count against ``MAX_LIST_ITEMS``).
Parsing and compiling cost about 10 µs per token: this is what bounds the
time of the largest policy."""

LIMITS_DOC = 'docs/secl.md "Limits"'
"""Every message about a limit crossed names this section (a policy past a
limit is refused as a whole, where other problems only skip a rule)."""


def is_limit_message(message: str) -> bool:
    return LIMITS_DOC in message


MAX_RULES = 5_000
"""Rules of all the policy files loaded together."""

MAX_MACROS = 5_000
"""Macros of all the policy files loaded together."""

MAX_DIAGNOSTICS = 1_000
"""Problems reported for one load; past it, one more line says how many
were left out (a broken generated policy must not print a million lines)."""

MAX_SOURCE_LINE_CHARS = 240
"""Characters of a source line shown under a diagnostic (around the caret)."""

KERNEL_BASENAME_APPROVERS = 4096
"""File name keys the kernel's ``basename_approvers`` map holds (its
``max_entries`` in ebpf/include/filters.h; tests/codegen/test_hostile_kernel_maps.py
checks the compiled object agrees). TODO(lead): one definition, in the header."""

# --- numbers ---------------------------------------------------------------------
MAX_DURATION_NS = 100 * 365 * 24 * 3600 * 1_000_000_000
"""Longest duration, in a SECL literal (``5s``) or a policy key (``every``,
``ttl``): 100 years, well inside the signed 64-bit nanoseconds the kernel
and the event timestamps use."""

MAX_VARIABLE_SIZE = MAX_LIST_ITEMS
"""``size`` of a ``set`` action's array variable."""

MAX_ITERATOR_ELEMENTS = 100
"""Elements a named iterator (``process.ancestors[A]``) tries per event, the
reference agent's bound (``maxRegisterIteration``): a rule is evaluated
once per element, the first 100 (nearest ancestors first)."""


class Budget:
    """What the expressions of one load may still cost: tokens to parse
    (:data:`MAX_TOKENS`), list elements (:data:`MAX_LIST_ITEMS`) and nodes
    once macros are expanded
    (:data:`MAX_EXPANDED_NODES`; a macro analysed once is charged again at
    each use). One per load, shared by all its expressions."""

    def __init__(self, tokens: int = MAX_TOKENS, items: int = MAX_LIST_ITEMS,
                 nodes: int = MAX_EXPANDED_NODES) -> None:
        self.tokens = tokens
        self.items = items
        self.nodes = nodes
        self._reported = False

    @property
    def exhausted(self) -> bool:
        return self.tokens < 0 or self.items < 0 or self.nodes < 0

    def report(self) -> bool:
        """True the first time only: one error says the load is too large,
        the expressions after it just fail."""
        first, self._reported = not self._reported, True
        return first


@dataclass(frozen=True, slots=True)
class IntRange:
    """The values an integer field can hold."""

    name: str
    low: int
    high: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.low <= value <= self.high

    def describe(self) -> str:
        return f"{self.name}: {self.low} to {self.high}"


U16 = IntRange("an unsigned 16-bit integer", 0, 2**16 - 1)
U32 = IntRange("an unsigned 32-bit integer", 0, 2**32 - 1)
S64 = IntRange("a signed 64-bit integer", -(2**63), 2**63 - 1)
U64 = IntRange("an unsigned 64-bit integer", 0, 2**64 - 1)
INT8 = IntRange("an 8-byte integer", -(2**63), 2**64 - 1)
"""Any integer literal: what fits in 8 bytes, signed or not."""

# Field name patterns (fnmatch, first match wins) -> the range of their values.
# Fields not listed hold any 8-byte integer. Values that reach kernel maps
# (open.flags masks: u64 in flags_approvers) are covered by their field's row.
# TODO(lead): this belongs in the event-type table (one width per field).
FIELD_RANGES: tuple[tuple[str, IntRange], ...] = (
    ("*.retval", S64),
    ("*.flags", U64),
    ("*.protection", U64),
    ("*_protection", U64),
    ("*.cap_effective", U64),
    ("*.cap_permitted", U64),
    ("*.inode", U64),
    ("*.cookie", U64),
    ("*.pid", U32), ("*.ppid", U32), ("*.tid", U32),
    ("*.uid", U32), ("*.gid", U32), ("*.euid", U32), ("*.egid", U32),
    ("*.fsuid", U32), ("*.fsgid", U32),
    ("*.mount_id", U32),
    ("*.mode", U32), ("*.rights", U32),
    ("*.length", U32), ("*.argc", U32),
    ("*.addr.port", U16), ("*.addr.family", U16),
    ("*.code", U32),
    ("*_at", U64), ("*_time", U64), ("event.timestamp", U64),
)


@functools.lru_cache(maxsize=4096)
def field_range(name: str) -> IntRange:
    """The range of an integer field's values."""
    for pattern, rng in FIELD_RANGES:
        if fnmatch.fnmatchcase(name, pattern):
            return rng
    return INT8


def describe() -> list[tuple[str, str]]:
    """(limit, value) rows for docs and tests."""
    return [
        ("policy file size", f"{MAX_POLICY_BYTES // MIB} MiB"),
        ("YAML nodes of a file, aliases expanded", f"{MAX_YAML_NODES:,}"),
        ("YAML nesting depth", f"{MAX_YAML_DEPTH}"),
        ("expression length", f"{MAX_EXPRESSION_CHARS // MIB} MiB (characters)"),
        ("list elements, all lists together", f"{MAX_LIST_ITEMS:,}"),
        ("string literal length", f"{MAX_STRING_CHARS:,} characters"),
        ("expression nesting depth", f"{MAX_NESTING_DEPTH}"),
        ("tokens of all expressions", f"{MAX_TOKENS:,}"),
        ("all expressions, macros expanded", f"{MAX_EXPANDED_NODES:,} nodes"),
        ("rules", f"{MAX_RULES:,}"),
        ("macros", f"{MAX_MACROS:,}"),
        ("durations", "100 years"),
        ("file names approved in the kernel", f"{KERNEL_BASENAME_APPROVERS:,}"),
        ("elements a named iterator tries", f"{MAX_ITERATOR_ELEMENTS}"),
    ]

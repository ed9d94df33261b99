"""Fuzzing the policy loader with hostile, structure-aware mutations of real
policies (rules/default.policy, the golden fixtures, the rule test cases),
each case run in a worker bounded in time and memory (tests/codegen/bounded.py):
never a traceback, never a case over the limits.

Mutations work on three levels: the YAML structure (values replaced by
huge numbers, long strings, deep or wide nesting, wrong types), the YAML
text (alias bombs, tags, control and non-UTF-8 bytes, a second document),
and each expression's tokens (slices repeated, parentheses and negations
piled up, literals swapped for extreme ones, fields and operators swapped
for any of the registry's). A last step may repeat a piece of the text
many times, to catch anything superlinear.

`make test` runs a few hundred cases; `make test-slow` thousands, with
larger amplification.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bounded import CASE_MEGABYTES, CASE_SECONDS, Worker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codegen.fields import REGISTRY
from codegen.lexer import tokenize
from codegen.limits import MAX_POLICY_BYTES

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [ROOT / "rules" / "default.policy", *sorted((ROOT / "tests" / "rules" / "golden").glob("*.policy"))]
CASE_SEEDS = sorted((ROOT / "rules" / "tests").glob("*.yaml"))

FIELDS = sorted(REGISTRY.fields)
OPERATORS = ["==", "!=", "<", "<=", ">", ">=", "=~", "!~", "in", "not in", "allin", "&&", "||", "&", "|", "^",
             "+", "-", "!", "(", ")", "[", "]", ","]
HOSTILE_LITERALS = [
    "9" * 30, "18446744073709551616", "18446744073709551615", "-9223372036854775809", "0x" + "f" * 17,
    "0o7777777777777777777777", "9" * 25 + "h", "99999999999h", "0s", '""', '"' + "a" * 5000 + '"',
    '~"' + "*a" * 40 + '*b"', '~"/**"', '~"/a/**/b"', 'r"(a+)+$"', 'r"("', 'r"' + "x" * 5000 + '"',
    "999.999.999.999/99", "::1/200", "${x}", "${process.pid}", '"${}"', '"/proc/${process.pid}/x"',
    "[" + ", ".join(['"x"'] * 50) + "]", "[1, -1, 2]", "[]", "[[1]]", "true", "O_RDWR", "SIGKILL", "EACCES",
    "-EACCES", "^0", "--1", "not", "5s + 10ms", "process.created_at", "open.flags & O_CREAT",
]
HOSTILE_VALUES: list[Any] = [
    None, True, 0, -1, 2**64, 10**40, 1e400, -1e400, 0.5, "", "x" * 5000, [], {}, [[[[[[[["deep"]]]]]]]],
    {"a": {"b": {"c": None}}}, ["x"] * 500, {f"k{i}": i for i in range(200)}, "2001-02-30", "10s", "1e400h",
    "9" * 40 + "s", "SIGNOPE", "override", "merge", "open.flags > 0", "all", "process", "\x7f",
]
TEXT_SNIPPETS = [
    "\n", "- ", ": ", "{", "}", "[", "]", "&a ", "*a", "!!binary ", "!!int ", "!!float ", "!!timestamp ",
    "!foo ", "? ", "---\n", "...\n", "\t", "\x00", "\x07", "\ufeff", "\u2028", "'", '"', "|", ">-", "#",
    "<<: *a\n",
]
BOMB = "".join([
    'x0: &x0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
    *(f"x{i}: &x{i} [" + ",".join([f"*x{i - 1}"] * 9) + "]\n" for i in range(1, 9)),
])


# --- structure-aware mutations ------------------------------------------------------

def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy: Any = dict(node) if isinstance(node, dict) else list(node)
    copy[head] = _replace(copy[head], rest, value)
    return copy


def mutate_structure(doc: Any, rnd: random.Random, n: int) -> Any:
    for _ in range(n):
        paths = list(_paths(doc))
        path = rnd.choice(paths)
        choice = rnd.random()
        if choice < 0.5:
            value = rnd.choice(HOSTILE_VALUES)
        elif choice < 0.75:  # a value from elsewhere in the document
            value = _get(doc, rnd.choice(paths))
        else:                # a deep copy of a value
            value = _get(doc, path)
            for _ in range(rnd.randint(1, 20)):
                value = [value] if rnd.random() < 0.5 else {"k": value}
        doc = _replace(doc, path, value)
    return doc  # (at most n subtrees copied: the document grows at most 2**n times)


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


# Amplification stops where the text would pass the policy size limit by
# a little: past it the loader only needs to see the size (tested apart).
MAX_CASE_CHARS = MAX_POLICY_BYTES + 4096


def _times(rnd: random.Random, amplify: int, piece_chars: int, room: int) -> int:
    """How many copies of a piece to add: random up to ``amplify``, within ``room`` characters."""
    return max(1, min(rnd.randint(1, amplify), room // max(1, piece_chars)))


def mutate_expression(text: str, rnd: random.Random, amplify: int) -> str:
    """Token-level mutations of one SECL expression."""
    starts = [t.lexpos for t in tokenize(text, lambda o, m: None)] + [len(text)]
    tokens = [text[a:b].strip() for a, b in zip(starts, starts[1:])]
    tokens = [t for t in tokens if t] or ["open.flags", ">", "0"]
    for _ in range(rnd.randint(1, 4)):
        tokens = tokens or ["open.flags"]
        i = rnd.randrange(len(tokens))
        kind = rnd.random()
        if kind < 0.2:
            tokens[i] = rnd.choice(HOSTILE_LITERALS)
        elif kind < 0.35:
            tokens[i] = rnd.choice(FIELDS)
        elif kind < 0.5:
            tokens[i] = rnd.choice(OPERATORS)
        room = MAX_CASE_CHARS - sum(len(t) + 1 for t in tokens)
        if kind < 0.65:
            j = min(len(tokens), i + rnd.randint(1, 6))
            piece = tokens[i:j] + [rnd.choice(["||", "&&", "||", ","])]
            tokens[i:i] = piece * _times(rnd, amplify, sum(len(t) + 1 for t in piece), room)
        elif kind < 0.8:
            tokens.insert(i, rnd.choice(["(", "!", "-", "^", "["]) * _times(rnd, amplify, 1, room))
        elif kind < 0.9:
            del tokens[i]
        else:
            n = _times(rnd, amplify * 10, 10, room)
            tokens.insert(i, "[" + ", ".join(f'"/p{k}"' for k in range(n)) + "]")
    return " ".join(tokens)


def mutate_expressions(doc: Any, rnd: random.Random, amplify: int) -> Any:
    for section in ("rules", "macros"):
        items = doc.get(section) if isinstance(doc, dict) else None
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            if isinstance(item, dict) and isinstance(item.get("expression"), str) and rnd.random() < 0.3:
                items[i] = dict(item, expression=mutate_expression(item["expression"], rnd, amplify))
    return doc


def mutate_text(text: str, rnd: random.Random, amplify: int) -> bytes:
    for _ in range(rnd.choice([0, 0, 0, 1, 2])):  # most cases stay valid YAML: the later stages get fuzzed too
        i = rnd.randint(0, len(text))
        text = text[:i] + rnd.choice(TEXT_SNIPPETS) + text[i:]
    if rnd.random() < 0.03:
        text = BOMB + text  # in an unused key: must be refused, harmlessly
    if rnd.random() < 0.2:  # amplify a random piece
        i = rnd.randint(0, len(text))
        j = min(len(text), i + rnd.randint(1, 40))
        text = text[:i] + text[i:j] * _times(rnd, amplify, j - i, MAX_CASE_CHARS - len(text)) + text[j:]
    data = text.encode("utf-8", "surrogatepass")
    if rnd.random() < 0.05:
        i = rnd.randint(0, len(data))
        data = data[:i] + bytes([rnd.choice([0x80, 0xC3, 0xFF, 0xED])]) + data[i:]
    return data


def hostile_policy(seed: Path, rnd: random.Random, amplify: int) -> bytes:
    doc = yaml.safe_load(seed.read_text(encoding="utf-8"))
    doc = mutate_expressions(doc, rnd, amplify)
    if rnd.random() < 0.4:
        doc = mutate_structure(doc, rnd, rnd.randint(1, 2))
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10**9)
    return mutate_text(text, rnd, amplify)


# --- the runs ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    with Worker() as w:
        yield w


def _check(worker: Worker, path: Path, kind: str) -> None:
    out = worker.run(path, kind)
    where = f"{path} (kept for reproduction; rulec validate {path})"
    assert out.ok, f"{where}:\n{out.error}"
    assert not out.timed_out, f"{where}: {out.seconds:.1f} s, over the {CASE_SECONDS} s limit"
    assert out.peak_mb < CASE_MEGABYTES, f"{where}: {out.peak_mb:.0f} MB, over the {CASE_MEGABYTES} MB limit"


_COUNT = iter(range(10**9))


def _fuzz(worker: Worker, tmp_path: Path, rnd: random.Random, amplify: int, kind: str) -> None:
    if kind == "cases":
        data = hostile_cases(rnd, amplify)
    else:
        data = hostile_policy(rnd.choice(SEEDS), rnd, amplify)
    path = tmp_path / f"case-{next(_COUNT)}.{'yaml' if kind == 'cases' else 'policy'}"
    path.write_bytes(data)
    _check(worker, path, kind)
    path.unlink()


def hostile_cases(rnd: random.Random, amplify: int) -> bytes:
    doc = yaml.safe_load(rnd.choice(CASE_SEEDS).read_text(encoding="utf-8"))
    doc = mutate_structure(doc, rnd, rnd.randint(1, 4))
    return mutate_text(yaml.safe_dump(doc, sort_keys=False, width=10**9), rnd, amplify)


RANDOMS = st.randoms(use_true_random=False)  # draws hypothesis controls (and shrinks)
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLOW_FUZZ = settings(max_examples=4000, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(RANDOMS)
def test_mutated_real_policies_load_within_limits(worker: Worker, tmp_path: Path, rnd: random.Random) -> None:
    _fuzz(worker, tmp_path, rnd, amplify=200, kind="policy")


@settings(FUZZ, max_examples=60)
@given(RANDOMS)
def test_mutated_rule_test_cases_load_within_limits(worker: Worker, tmp_path: Path, rnd: random.Random) -> None:
    _fuzz(worker, tmp_path, rnd, amplify=200, kind="cases")


@pytest.mark.slow
@SLOW_FUZZ
@given(RANDOMS)
def test_mutated_real_policies_load_within_limits_long(worker: Worker, tmp_path: Path, rnd: random.Random) -> None:
    _fuzz(worker, tmp_path, rnd, amplify=20_000, kind="policy")


@pytest.mark.slow
@settings(SLOW_FUZZ, max_examples=500)
@given(RANDOMS)
def test_mutated_rule_test_cases_load_within_limits_long(worker: Worker, tmp_path: Path, rnd: random.Random) -> None:
    _fuzz(worker, tmp_path, rnd, amplify=20_000, kind="cases")

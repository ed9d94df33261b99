"""Validating policies at the documented limits (codegen/limits.py): time and memory.

Each policy is generated to sit just under one limit (or all of them at
once) and validated by `rulec validate` in a child process, timed, with its
peak resident memory from the kernel (``wait4``). The acceptance figures of
issue #14: a list of 200 000 strings validates in under 2 s; a policy at
the maximum size in under 5 s and 500 MB.

Run: ``.venv/bin/python -m bench.bench_limits [--rounds R]`` (no root needed).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from codegen import limits

RULEC = str(Path(sys.executable).parent / "rulec")


def list_200k() -> str:
    items = ", ".join(f'"/usr/local/bin/tool-{i}"' for i in range(200_000))
    return f"rules:\n  - id: tools\n    expression: 'exec.file.path in [{items}]'\n"


def macro_200k() -> str:
    values = "".join(f"      - /usr/local/bin/tool-{i}\n" for i in range(200_000))
    return f"macros:\n  - id: tools\n    values:\n{values}rules:\n  - id: r\n    expression: exec.file.path in tools\n"


def dense_tokens() -> str:
    """One expression of (almost) MAX_TOKENS tokens: the parser's worst case per byte."""
    n = (limits.MAX_TOKENS - 20) // 4
    body = " || ".join(f"open.flags == {i}" for i in range(n))
    return f"rules:\n  - id: dense\n    expression: >-\n      open.retval == 0 && ({body})\n"


def rule_limit() -> str:
    """MAX_RULES rules of the shapes real policies use (within the token budget)."""
    lines = ["macros:", "  - id: shells", "    values: [bash, sh, dash, zsh]", "rules:"]
    for i in range(limits.MAX_RULES):
        lines += [f"  - id: rule_{i}", f"    description: generated rule {i}",
                  f"    expression: process.comm in shells && exec.file.path == \"/opt/app/{i}/bin\"",
                  "    tags: {severity: high}"]
    return "\n".join(lines) + "\n"


def yaml_nodes() -> str:
    """A policy of (almost) MAX_YAML_NODES YAML nodes: tags, the cheapest nodes to write."""
    n = (limits.MAX_YAML_NODES - 50) // 2
    tags = ", ".join(f"t{i}: v" for i in range(n))
    return f"rules:\n  - id: r\n    expression: open.flags > 0\n    tags: {{{tags}}}\n"


def everything() -> str:
    """Every budget nearly spent in one file at the size limit: tokens, list
    elements, YAML nodes, rules; padded to MAX_POLICY_BYTES."""
    rules = []
    n_rules = min(limits.MAX_RULES - 2, (limits.MAX_TOKENS - 1000) // 12)
    for i in range(n_rules):  # 11 tokens each
        rules.append(f"  - id: r{i}\n    expression: exec.file.name == \"t{i}\" && process.uid != {i}\n")
    items = ", ".join(f'"/usr/bin/x{i}"' for i in range(limits.MAX_LIST_ITEMS - 1000))
    rules.append(f"  - id: big\n    expression: 'exec.file.path in [{items}]'\n")
    n_tags = (limits.MAX_YAML_NODES - 7 * n_rules - 100) // 2  # a rule: its mapping, 2 keys, 2 values...
    tags = ", ".join(f"t{i}: v" for i in range(n_tags))
    rules.append(f"  - id: tagged\n    expression: open.flags > 0\n    tags: {{{tags}}}\n")
    text = "rules:\n" + "".join(rules)
    pad = limits.MAX_POLICY_BYTES - len(text.encode()) - len("# \n")
    return "# " + "x" * pad + "\n" + text


POLICIES: dict[str, Callable[[], str]] = {
    "list of 200 000 strings (in [...])": list_200k,
    "list macro of 200 000 strings": macro_200k,
    f"one expression of {limits.MAX_TOKENS:,} tokens": dense_tokens,
    f"{limits.MAX_RULES:,} rules": rule_limit,
    f"{limits.MAX_YAML_NODES:,} YAML nodes": yaml_nodes,
    "every limit at once, 8 MiB": everything,
}


def validate(path: Path) -> tuple[float, float, int]:
    """(seconds, peak MB, exit code) of `rulec validate PATH`."""
    start = time.perf_counter()
    pid = os.spawnv(os.P_NOWAIT, RULEC, [RULEC, "validate", str(path)])
    _, status, usage = os.wait4(pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_limits", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"| policy | size | validate (median of {args.rounds}) | peak memory | valid |")
    print("|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as d:
        for name, make in POLICIES.items():
            path = Path(d) / "p.policy"
            path.write_text(make(), encoding="utf-8")
            size = path.stat().st_size
            assert size <= limits.MAX_POLICY_BYTES, (name, size)
            runs = [validate(path) for _ in range(args.rounds)]
            seconds = statistics.median(r[0] for r in runs)
            mb = max(r[1] for r in runs)
            print(f"| {name} | {size / limits.MIB:.1f} MiB | {seconds:.2f} s | {mb:.0f} MB | "
                  f"{'yes' if runs[0][2] == 0 else 'NO'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

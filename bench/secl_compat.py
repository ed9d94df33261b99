#!/usr/bin/env python3
"""How much of other policies loads here: ``rulec validate``'s verdict per rule, tabulated.

    .venv/bin/python bench/secl_compat.py /work/dd-policies/default-*.policy

For each policy file: rules total / loaded / skipped by filter or
agent_version / on event types this agent does not produce / failed (unknown
field, unsupported construct, invalid), and the most common reasons of the
failures. Used for docs/secl.md "Compatibility" with the reference agent's
published default policies (kept outside the repository).
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

from codegen.agentversion import EMULATED_VERSION
from codegen.hostinfo import host_document
from codegen.ir import fields_of
from codegen.policy import EXCLUDED, UNSUPPORTED_TYPE, load_policies


def _shape(message: str) -> str:
    """A failure reason with the rule-specific names kept and literals dropped."""
    return re.sub(r"\(expected[^)]*\)|, did you mean '[^']*'\?", "", message.split(": /")[0]).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policies", nargs="+")
    parser.add_argument("--agent-version", default=EMULATED_VERSION)
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    host = host_document()
    print("| policy | rules | loaded (of them reading a field without a source) "
          "| skipped by filter / agent_version | unsupported type | failed |")
    print("|---|---:|---:|---:|---:|---:|")
    reasons: dict[str, Counter[str]] = {}
    for path in args.policies:
        result = load_policies([path], host=host, agent_version=args.agent_version)
        counts = result.skip_counts()
        total = len(result.ruleset.rules) + len(result.skipped)
        unsupported = counts[UNSUPPORTED_TYPE]
        failed = len(result.failed) - unsupported
        excluded = " / ".join(str(counts[k]) for k in EXCLUDED)
        note = "" if result.ok else f" (policy errors: {result.diagnostics.error_count})"
        sourceless = sum(1 for r in result.ruleset.rules if any(f.unavailable for f in fields_of(r.ir)))
        print(f"| {Path(path).name}{note} | {total} | {len(result.ruleset.rules)} ({sourceless}) | {excluded} "
              f"| {unsupported} | {failed} |")
        reasons[Path(path).name] = Counter(_shape(s.message) for s in result.failed if s.reason != UNSUPPORTED_TYPE)
    for name, counter in reasons.items():
        top = "; ".join(f"{n}x {r}" for r, n in counter.most_common(args.top))
        print(f"\n{name}: {top or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

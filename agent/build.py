"""Compile the BPF sources into CO-RE objects (the `make build` step).

This runs at build time only: the monitored host loads the objects and never
runs a compiler. Objects are rebuilt when any source or header is newer.

    python -m agent.build [--build-dir build] [--quiet]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from agent.clang import EBPF, ROOT, BuildError, compile_object, write_if_changed

__all__ = ["ROOT", "EBPF", "BuildError", "build", "compile_object", "trace_policy_header"]


@dataclass(frozen=True)
class Target:
    source: Path
    output: Path


def trace_policy_header(gen_dir: Path) -> Path:
    """policy.h of the trace build: every event type, no in-kernel filter."""
    from codegen.cbackend import render_policy_header, trace_filters

    path = gen_dir / "policy.h"
    write_if_changed(path, render_policy_header(trace_filters()))
    return path


def default_targets(build_dir: Path) -> list[Target]:
    return [
        Target(EBPF / "probe.bpf.c", build_dir / "ebpf" / "probe.bpf.o"),
        Target(EBPF / "features.bpf.c", build_dir / "ebpf" / "features.bpf.o"),
    ]


def build_default_policy(*, quiet: bool = False) -> list[Path]:
    """Compile the bundled default policy into the cache `rsagent run` reads."""
    from codegen.policy import load_policies

    from .compiled import locate

    result = load_policies([ROOT / "rules"])
    if not result.ok:
        raise BuildError("rules/ has errors: run `rulec validate rules/`")
    compiled = locate(result)
    return [compiled.probe_object] if compiled.directory.exists() and not quiet else []


def build(build_dir: Path, *, quiet: bool = False, force: bool = False) -> list[Path]:
    built = []
    gen = build_dir / "trace" / "gen"
    trace_policy_header(gen)
    for t in default_targets(build_dir):
        if compile_object(t.source, t.output, extra_includes=[gen], force=force):
            built.append(t.output)
            if not quiet:
                print(f"build: {t.output}")
    built += build_default_policy(quiet=quiet)
    if quiet and built:
        print(f"build: compiled {', '.join(p.name for p in built)}")
    return built


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m agent.build", description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, default=ROOT / "build")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING, format="build: %(message)s")
    try:
        build(args.build_dir.resolve(), quiet=args.quiet, force=args.force)
    except BuildError as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compile the BPF sources into CO-RE objects (the `make build` step).

This runs at build time only: the monitored host loads the objects and never
runs a compiler. Objects are rebuilt when any source or header is newer.

    python -m agent.build [--build-dir build] [--quiet] [--install-data DIR]

``--install-data DIR`` then copies what an installed agent loads (the
objects, the default policy and its compiled objects) into DIR, laid out
as agent/installdirs.py describes (the container image's /usr/lib/rsagent).
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
    if not result.ok or result.failed:  # the bundled policy loads whole
        raise BuildError("rules/ has errors: run `rulec validate --strict rules/`")
    compiled = locate(result)
    return [compiled.probe_object] if compiled.directory.exists() and not quiet else []


def build(build_dir: Path, *, quiet: bool = False, force: bool = False) -> list[Path]:
    from codegen.parser import write_tables

    built = []
    write_tables(str(ROOT / "codegen"))   # the SECL parser's tables, read at import
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


def install_data(build_dir: Path, dest: Path) -> None:
    """The data of an installed agent (see agent/installdirs.py), from a built checkout."""
    import shutil

    from codegen.policy import load_policies

    from .compiled import locate

    for t in default_targets(build_dir):
        (dest / "ebpf").mkdir(parents=True, exist_ok=True)
        shutil.copy2(t.output, dest / "ebpf" / t.output.name)
    shutil.copytree(ROOT / "rules", dest / "rules", dirs_exist_ok=True, ignore=shutil.ignore_patterns("tests"))
    compiled = locate(load_policies([ROOT / "rules"]), cache=build_dir / "policies")
    out = dest / "policies" / compiled.directory.name
    out.mkdir(parents=True, exist_ok=True)
    for name in ("manifest.json", compiled.manifest.probe_object, compiled.manifest.features_object):
        shutil.copy2(compiled.directory / name, out / name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m agent.build", description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, default=ROOT / "build")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--install-data", type=Path, default=None, metavar="DIR",
                    help="then copy the installed agent's data into DIR")
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING, format="build: %(message)s")
    try:
        build(args.build_dir.resolve(), quiet=args.quiet, force=args.force)
        if args.install_data is not None:
            install_data(args.build_dir.resolve(), args.install_data)
    except BuildError as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

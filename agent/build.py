"""Compile the BPF sources into CO-RE objects (the `make build` step).

This runs at build time only: the monitored host loads the objects and never
runs a compiler. Objects are rebuilt when any source or header is newer.

    python -m agent.build [--build-dir build] [--quiet]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
EBPF = ROOT / "ebpf"
ARCH = "x86_64"
CLANG_CANDIDATES = ("clang-19", "clang")


class BuildError(RuntimeError):
    """A BPF object could not be built."""


def find_clang() -> str:
    env = os.environ.get("CLANG")
    for name in ((env,) if env else ()) + CLANG_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise BuildError("clang not found (tried clang-19, clang): run `make setup` or set CLANG=/path/to/clang")


def bpf_cflags(extra_includes: list[Path] | None = None) -> list[str]:
    includes = [*(extra_includes or []), EBPF / "include", EBPF, ROOT / "vmlinux" / ARCH]
    return [
        "-g", "-O2", "-target", "bpf", f"-D__TARGET_ARCH_{'x86' if ARCH == 'x86_64' else ARCH}",
        "-Wall", "-Werror", "-Wno-unused-function",
        *(f"-I{p}" for p in includes),
    ]


@dataclass(frozen=True)
class Target:
    source: Path
    output: Path


def _inputs(extra: list[Path]) -> list[Path]:
    files = [p for p in EBPF.rglob("*") if p.suffix in (".c", ".h")]
    files.append(ROOT / "vmlinux" / ARCH / "vmlinux.h")
    for d in extra:
        files += [p for p in d.rglob("*") if p.suffix in (".c", ".h")]
    return files


def compile_object(source: Path, output: Path, *, extra_includes: list[Path] | None = None,
                   defines: dict[str, str] | None = None, force: bool = False) -> bool:
    """Compile ``source`` into ``output`` if stale. Returns True when it compiled."""
    extra = extra_includes or []
    if not force and output.exists():
        newest = max(p.stat().st_mtime_ns for p in _inputs(extra) + [source])
        if newest <= output.stat().st_mtime_ns:
            return False
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f"{output.name}.{os.getpid()}.tmp")
    cmd = [find_clang(), *bpf_cflags(extra), *(f"-D{k}={v}" for k, v in (defines or {}).items()),
           "-c", str(source), "-o", str(tmp)]
    log.debug("%s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"compile {source.relative_to(ROOT)}: clang exited {proc.returncode}\n{proc.stderr.strip()}")
    tmp.replace(output)
    return True


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` unless the file already holds it (keeps mtimes for make-like staleness)."""
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def trace_policy_header(gen_dir: Path) -> Path:
    """policy.h of the trace build: every event type, no in-kernel filter."""
    from codegen.cbackend import render_policy_header, trace_filters

    path = gen_dir / "policy.h"
    write_if_changed(path, render_policy_header(trace_filters(), policy_name="(none: trace)",
                                                policy_sha256="-"))
    return path


def default_targets(build_dir: Path) -> list[Target]:
    return [
        Target(EBPF / "probe.bpf.c", build_dir / "ebpf" / "probe.bpf.o"),
        Target(EBPF / "features.bpf.c", build_dir / "ebpf" / "features.bpf.o"),
    ]


def build(build_dir: Path, *, quiet: bool = False, force: bool = False) -> list[Path]:
    built = []
    gen = build_dir / "trace" / "gen"
    trace_policy_header(gen)
    for t in default_targets(build_dir):
        if compile_object(t.source, t.output, extra_includes=[gen], force=force):
            built.append(t.output)
            if not quiet:
                print(f"build: {t.output}")
    if quiet and built:
        print(f"build: compiled {', '.join(p.name for p in built)}")
    return built


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m agent.build", description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, default=ROOT / "build")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    try:
        build(args.build_dir.resolve(), quiet=args.quiet, force=args.force)
    except BuildError as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

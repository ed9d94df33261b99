"""Shared pieces of the benchmarks: building helpers, timing, medians."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from agent.build import ROOT, compile_object

BENCH = Path(__file__).resolve().parent
WORK = Path(tempfile.gettempdir()) / "rsagent-bench"


def require_root() -> None:
    if os.geteuid() != 0:
        raise SystemExit("benchmarks load BPF programs: run as root")


def build_c(name: str) -> Path:
    """Compile bench/c/NAME.c with -O2 into the work directory."""
    WORK.mkdir(parents=True, exist_ok=True)
    src = BENCH / "c" / f"{name}.c"
    out = WORK / name
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        subprocess.run([shutil.which("gcc") or "cc", "-O2", "-o", str(out), str(src)], check=True)
    return out


def build_bpf(name: str) -> Path:
    """Compile bench/bpf/NAME.bpf.c into a CO-RE object in the work directory."""
    out = WORK / f"{name}.bpf.o"
    compile_object(BENCH / "bpf" / f"{name}.bpf.c", out)
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def pct(value: float, base: float) -> str:
    return f"{(value / base - 1) * 100:+.1f} %"


def objects_dir() -> Path:
    return ROOT / "build" / "ebpf"

"""Shared pieces of the benchmarks: building helpers, timing, medians."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.build import ROOT, compile_object

BENCH = Path(__file__).resolve().parent
WORK = Path(tempfile.gettempdir()) / "rsagent-bench"


def require_root() -> None:
    if os.geteuid() != 0:
        raise SystemExit("benchmarks load BPF programs: run as root")


def build_c(name: str) -> Path:
    """Compile bench/c/NAME.c with -O2 into the work directory, named for the
    source's hash: worktrees with other versions of the loop (the work
    directory is shared) never run each other's binary."""
    WORK.mkdir(parents=True, exist_ok=True)
    src = BENCH / "c" / f"{name}.c"
    out = WORK / f"{name}-{hashlib.sha256(src.read_bytes()).hexdigest()[:12]}"
    if not out.exists():
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        subprocess.run([shutil.which("gcc") or "cc", "-O2", "-o", str(tmp), str(src)], check=True)
        tmp.replace(out)
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


VENV_BIN = Path(sys.executable).parent


def run_loop(loop: Path, target: Path, n: int) -> float:
    """Run a C load generator; it prints ns per iteration."""
    out = subprocess.run([str(loop), str(target), str(n)], check=True, capture_output=True, text=True)
    return float(out.stdout)


def start_rsagent(args: list[str], ready: Path) -> subprocess.Popen[bytes]:
    """`rsagent ARGS --ready-file READY`, output discarded; returns once attached."""
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen([str(VENV_BIN / "rsagent"), *args, "--ready-file", str(ready)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"rsagent {args[0]} did not start: {err}")
        time.sleep(0.05)
    return proc


def stop_rsagent(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM, wait, return what it logged."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return err.decode()

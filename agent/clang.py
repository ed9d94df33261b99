"""Running clang on the BPF sources: the one place that knows the flags.

Used at build time only (`make build`, `rulec compile`): the monitored host
loads prebuilt CO-RE objects and never runs a compiler.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(os.environ.get("RSAGENT_SRC", Path(__file__).resolve().parents[1]))
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


def _inputs(extra: list[Path]) -> list[Path]:
    files = [p for p in EBPF.rglob("*") if p.suffix in (".c", ".h")]
    files.append(ROOT / "vmlinux" / ARCH / "vmlinux.h")
    for d in extra:
        files += [p for p in d.rglob("*") if p.suffix in (".c", ".h")]
    return files


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` unless the file already holds it (keeps mtimes for make-like staleness)."""
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def clang_version() -> str:
    out = subprocess.run([find_clang(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0].strip()


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
        raise BuildError(f"compile {source}: clang exited {proc.returncode}\n{proc.stderr.strip()}")
    tmp.replace(output)
    return True

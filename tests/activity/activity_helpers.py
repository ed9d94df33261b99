"""Helpers for the process-activity tests (issue 9): raw syscalls through
ctypes, with their numbers and the kernel constants from the event-type
table's sources (vmlinux/x86_64/kconsts.json), and child processes that
perform them (each with a pid of its own, so its documents are found by pid).

Child code runs as ``python -c`` with this directory on sys.path, so it can
``from activity_helpers import sc, ...``.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from codegen.constants import ERRNOS
from codegen.kconstants import family_values
from codegen.tablegen import constant, syscall_nr

HERE = Path(__file__).resolve().parent
NOBODY = 65534

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

SIG = family_values("signals")
CAP = family_values("capabilities")
PTRACE = family_values("ptrace")
PR = family_values("prctl")
CLONE = family_values("clone")
MFD = family_values("memfd")
PIPE_BUF = family_values("pipe_buf")
ERRNO = ERRNOS


def sc(name: str, *args: Any) -> int:
    """syscall(name, args...): its return value, or -errno."""
    conv = [a if isinstance(a, (ctypes.c_void_p, bytes, ctypes.Array)) else ctypes.c_long(a) for a in args]
    ret = _libc.syscall(ctypes.c_long(syscall_nr(name)), *conv)
    return -ctypes.get_errno() if ret == -1 else int(ret)


def kconst(name: str) -> int:
    """A kernel constant the BPF code uses (RS_<name>), from the kernel's headers."""
    return constant(name)


def become(uid: int, gid: int | None = None) -> None:
    """Drop to uid/gid (all of real, effective, saved, fs), no groups."""
    gid = uid if gid is None else gid
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def run_child(code: str, *, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new Python process (it prints what the test needs)."""
    prologue = f"import sys, os; sys.path.insert(0, {str(HERE)!r}); from activity_helpers import *\n"
    proc = subprocess.run([sys.executable, "-c", prologue + code], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"child failed ({proc.returncode}): {proc.stderr}")
    return proc


def child_output(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """``key=value`` lines the child printed (integers)."""
    out = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if value:
            out[key.strip()] = int(value)
    return out


def docs_of(col: Any, event_type: str, pid: int) -> list[dict[str, Any]]:
    return [d for d in col.of_type(event_type) if d["process"]["pid"] == pid]

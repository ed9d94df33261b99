"""Reading processes that already run when the agent starts, from /proc."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcEntry:
    pid: int
    ppid: int
    start_boot_ns: int        # CLOCK_BOOTTIME ns
    comm: str
    exe: bytes | None         # readlink(/proc/PID/exe); None for kernel threads / gone
    argv: list[str]
    exe_inode: int


def _read_stat(root: Path, pid: int) -> tuple[str, int, int] | None:
    try:
        data = (root / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split at the last ')'
    lpar, rpar = data.find(b"("), data.rfind(b")")
    comm = data[lpar + 1 : rpar].decode("utf-8", "replace")
    fields = data[rpar + 2 :].split()
    ppid = int(fields[1])
    start_ticks = int(fields[19])
    return comm, ppid, start_ticks * 1_000_000_000 // _CLK_TCK


def read_process(pid: int, root: Path = Path("/proc")) -> ProcEntry | None:
    stat = _read_stat(root, pid)
    if stat is None:
        return None
    comm, ppid, start = stat
    base = root / str(pid)
    exe: bytes | None
    try:
        exe = os.readlink(os.fsencode(base / "exe"))
        if exe.endswith(b" (deleted)"):
            exe = exe[: -len(b" (deleted)")]
    except OSError:
        exe = None
    try:
        raw = (base / "cmdline").read_bytes()
        argv = [a.decode("utf-8", "backslashreplace") for a in raw.split(b"\0")[:-1]] if raw else []
    except OSError:
        argv = []
    try:
        inode = os.stat(base / "exe").st_ino
    except OSError:
        inode = 0
    return ProcEntry(pid, ppid, start, comm, exe, argv, inode)


def list_pids(root: Path = Path("/proc")) -> list[int]:
    return sorted(int(name) for name in os.listdir(root) if name.isdigit())

"""Reading processes from /proc: the snapshot at start (processes older than
the agent) and the fallback for a process whose fork/exec events were missed.

Everything an exec record carries is read here too, so an image from /proc
looks like one from the kernel: executable (path, inode, mount id from an
O_PATH descriptor's fdinfo, mode, owner, times), argv, credentials and
capabilities, tty, container id, kernel-thread flag. A process can vanish
between two reads: any missing piece leaves a default, never an exception.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..events.layout import layout
from .cgroups import cgroup_id_of_cgroup_file
from .containers import container_id_of_cgroup_file
from .model import AUID_UNSET

log = logging.getLogger(__name__)

_CLK_TCK = os.sysconf("SC_CLK_TCK")
TICK_NS = 1_000_000_000 // _CLK_TCK
_PF_KTHREAD = layout().const("RS_PF_KTHREAD")


@dataclass(frozen=True, slots=True)
class ExeStat:
    """The executable behind /proc/PID/exe."""

    inode: int
    dev: int
    mount_id: int
    mode: int
    uid: int
    gid: int
    ctime_ns: int
    mtime_ns: int
    nlink: int = 1


@dataclass(frozen=True, slots=True)
class ProcEntry:
    pid: int
    ppid: int
    start_boot_ns: int        # CLOCK_BOOTTIME ns, clock-tick resolution
    comm: str
    exe: bytes | None         # readlink(/proc/PID/exe); None for kernel threads / gone
    argv: list[str]
    exe_inode: int
    exe_stat: ExeStat | None = None
    uids: tuple[int, int, int, int] = (0, 0, 0, 0)   # real, effective, saved, fs
    gids: tuple[int, int, int, int] = (0, 0, 0, 0)
    cap_effective: int = 0
    cap_permitted: int = 0
    tty_nr: int = 0
    kthread: bool = False
    container_id: str = ""
    cgroup_id: int = 0        # cgroup v2 id (agent/process/cgroups.py)
    auid: int = AUID_UNSET    # /proc/PID/loginuid
    start_stack: int = 0      # /proc/PID/stat startstack: inherited by fork, new (ASLR) at exec


@dataclass(frozen=True, slots=True)
class _Stat:
    comm: str
    ppid: int
    tty_nr: int
    flags: int
    start_boot_ns: int
    start_stack: int


def _read_stat(base: Path) -> _Stat | None:
    try:
        data = (base / "stat").read_bytes()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split at the last ')'
    lpar, rpar = data.find(b"("), data.rfind(b")")
    comm = data[lpar + 1 : rpar].decode("utf-8", "replace")
    fields = data[rpar + 2 :].split()
    try:
        # fields[i] is field i + 3 of proc(5): ppid 4, tty_nr 7, flags 9, starttime 22, startstack 28
        return _Stat(comm, int(fields[1]), int(fields[4]), int(fields[6]),
                     int(fields[19]) * 1_000_000_000 // _CLK_TCK, int(fields[25]))
    except (IndexError, ValueError):
        log.debug("%s/stat: unexpected format", base)
        return None


def _read_status(base: Path) -> dict[str, str]:
    try:
        text = (base / "status").read_text(errors="replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key in ("Uid", "Gid", "CapEff", "CapPrm"):
            out[key] = value.strip()
    return out


def _loginuid(base: Path) -> int:
    try:
        return int((base / "loginuid").read_text())
    except (OSError, ValueError):
        return AUID_UNSET  # no audit support: the kernel has no login uid for anyone


def _ids(value: str | None) -> tuple[int, int, int, int]:
    try:
        a, b, c, d = (int(x) for x in (value or "").split()[:4])
    except ValueError:
        return (0, 0, 0, 0)
    return (a, b, c, d)


def _hex(value: str | None) -> int:
    try:
        return int(value or "0", 16)
    except ValueError:
        return 0


def _mount_id_of_fd(fd: int) -> int:
    try:
        for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _exe_stat(base: Path) -> ExeStat | None:
    try:
        fd = os.open(base / "exe", os.O_PATH)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        return ExeStat(st.st_ino, st.st_dev, _mount_id_of_fd(fd), st.st_mode, st.st_uid,
                       st.st_gid, st.st_ctime_ns, st.st_mtime_ns, st.st_nlink)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_process(pid: int, root: Path = Path("/proc")) -> ProcEntry | None:
    base = root / str(pid)
    stat = _read_stat(base)
    if stat is None:
        return None
    exe: bytes | None
    try:
        exe = os.readlink(os.fsencode(base / "exe"))
        exe = exe.removesuffix(b" (deleted)")
    except OSError:
        exe = None
    try:
        raw = (base / "cmdline").read_bytes()
        argv = [a.decode("utf-8", "backslashreplace") for a in raw.split(b"\0")]
        if argv and argv[-1] == "":
            argv.pop()
    except OSError:
        argv = []
    exe_stat = _exe_stat(base) if exe is not None else None
    status = _read_status(base)
    try:
        cgroups = (base / "cgroup").read_text(errors="replace")
    except OSError:
        cgroups = ""
    return ProcEntry(
        pid=pid,
        ppid=stat.ppid,
        start_boot_ns=stat.start_boot_ns,
        comm=stat.comm,
        exe=exe,
        argv=argv,
        exe_inode=exe_stat.inode if exe_stat else 0,
        exe_stat=exe_stat,
        uids=_ids(status.get("Uid")),
        gids=_ids(status.get("Gid")),
        cap_effective=_hex(status.get("CapEff")),
        cap_permitted=_hex(status.get("CapPrm")),
        tty_nr=stat.tty_nr,
        kthread=bool(stat.flags & _PF_KTHREAD),
        start_stack=stat.start_stack,
        container_id=container_id_of_cgroup_file(cgroups),
        cgroup_id=cgroup_id_of_cgroup_file(cgroups),
        auid=_loginuid(base),
    )


def list_pids(root: Path = Path("/proc")) -> list[int]:
    return sorted(int(name) for name in os.listdir(root) if name.isdigit())


def tty_name(tty_nr: int, sys_root: Path = Path("/sys/dev/char")) -> str:
    """The kernel's name of a tty (tty_struct.name) from /proc/PID/stat's
    tty_nr: ``pts3`` for Unix98 pseudo-terminals, else the device's name
    from sysfs with '/' removed (``tty1``, ``ttyS0``); "" without a tty."""
    if tty_nr == 0:
        return ""
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:
        return f"pts{(major - 136) * 256 + minor}"
    try:
        for line in (sys_root / f"{major}:{minor}" / "uevent").read_text().splitlines():
            if line.startswith("DEVNAME="):
                return line.split("=", 1)[1].replace("/", "")
    except OSError:
        pass
    return ""


def same_start(exact_ns: int, proc_ns: int) -> bool:
    """Does a /proc start time (clock ticks, truncated) match an exact one?"""
    return 0 <= exact_ns - proc_ns < TICK_NS

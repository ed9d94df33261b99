"""The process-activity calls of the differential workload (workload.py runs
them in its own process; activity_trials.py says what each must produce).

Each call returns the syscall's return value (-errno on failure), or None
when it could not be made (a splice of a file that is gone): no event."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable
from typing import Any

# x86-64 syscall numbers and constants (stable ABI); the test's oracle uses
# the agent's own, from the kernel's headers
NR = {"ptrace": 101, "kill": 62, "memfd_create": 319, "splice": 275, "prctl": 157, "unshare": 272, "setns": 308}
PTRACE = {"PTRACE_PEEKTEXT": 1, "PTRACE_PEEKDATA": 2, "PTRACE_PEEKUSR": 3, "PTRACE_GETEVENTMSG": 0x4201,
          "invalid": 0x7777}
PRCTL = {"PR_GET_DUMPABLE": 3, "PR_GET_KEEPCAPS": 7, "PR_SET_NAME": 15, "fault": 15, "invalid": 0x7777}
PR_SET_PDEATHSIG = 1
SIGNALS = {"SIGUSR1": signal.SIGUSR1, "SIGUSR2": signal.SIGUSR2, "SIGWINCH": signal.SIGWINCH, "probe": 0,
           "missing": signal.SIGUSR1}
MISSING_PID = 4_000_000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_children: dict[str, int] = {}
# the namespaces to join, as they are before any unshare of the workload
_NS = {kind: os.open(f"/proc/self/ns/{kind}", os.O_RDONLY) for kind in ("uts", "ipc")}
_word = ctypes.c_ulong()


def _sc(name: str, *args: Any) -> int:
    conv = [a if isinstance(a, (bytes, ctypes.c_void_p)) else ctypes.c_long(a) for a in args]
    ret = _libc.syscall(ctypes.c_long(NR[name]), *conv)
    return -ctypes.get_errno() if ret == -1 else int(ret)


def _die_with_the_workload() -> None:
    """The kernel kills this child when the workload exits: no kill() of the
    workload's own to clean up, which a signal rule of the trial would match."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _tracee() -> int:
    if "tracee" not in _children:
        pid = os.fork()
        if pid == 0:
            _die_with_the_workload()
            _libc.ptrace(0, 0, 0, 0)  # PTRACE_TRACEME
            os.kill(os.getpid(), signal.SIGSTOP)
            os._exit(0)
        os.waitpid(pid, os.WUNTRACED)
        _children["tracee"] = pid
    return _children["tracee"]


def _target() -> int:
    if "target" not in _children:
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:
            _die_with_the_workload()
            for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH):
                signal.signal(s, signal.SIG_IGN)
            os.write(wr, b"1")
            signal.pause()
            os._exit(0)
        os.read(rd, 1)
        _children["target"] = pid
    return _children["target"]


def ptrace(request: str) -> int:
    return _sc("ptrace", PTRACE[request], _tracee(), 0, ctypes.c_void_p(ctypes.addressof(_word)))


def send_signal(name: str) -> int:
    return _sc("kill", MISSING_PID if name == "missing" else _target(), SIGNALS[name])


def memfd_create(name: str, flags: int) -> int:
    fd = _sc("memfd_create", name.encode(), flags)
    if fd >= 0:
        os.close(fd)
    return fd


def prctl(option: str) -> int:
    # the only name set is the process's own: its comm (the rules' process.comm) stays
    arg: Any = ctypes.c_void_p(8) if option == "fault" else b"python3" if option == "PR_SET_NAME" else 0
    return _sc("prctl", PRCTL[option], arg, 0, 0, 0)


def unshare(flags: int) -> int:
    return _sc("unshare", flags)


def setns(kind: str, nstype: int) -> int:
    return _sc("setns", _NS[kind], nstype)


def chdir(path: str) -> int:
    back = os.getcwd()
    try:
        os.chdir(path)
        return 0
    except OSError as exc:
        return -(exc.errno or 0)
    finally:
        os.chdir(back)


def splice(path: str) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    r, w = os.pipe()   # a fresh pipe: its buffers carry no flags
    try:
        return _sc("splice", fd, 0, w, 0, 16, 0)
    finally:
        for x in (fd, r, w):
            os.close(x)


CALLS: dict[str, Callable[..., int | None]] = {
    "ptrace": ptrace, "signal": send_signal, "memfd_create": memfd_create, "prctl": prctl,
    "unshare": unshare, "setns": setns, "chdir": chdir, "splice": splice,
}


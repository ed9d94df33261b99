"""The kernel matrix's process-activity part (issue 9): what the workload's
child does (``act``, as root, in its directory) and what each hook set must
report of it (``checks``).

The child traces and signals a sleeper of its own, changes and restores
its credentials (effective ids, capabilities), makes a memfd, splices a
file into a drained pipe, renames itself, changes directory (through the
symlinked directory, and to a missing one), and leaves and rejoins the
host's uts namespace. Then, from inside a new pid namespace, an
unprivileged process is refused a signal and a ptrace attach on a root
process of that namespace: only a precise hook set names the target of a
refused call there (the tracepoint set's user-space lookup by pid only
works in the host's pid namespace) - a check of the precise captures
themselves. The pids of the helpers are written to ``activity.json``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Doc = dict[str, Any]
CheckFn = Callable[[str, str, list[Doc], Callable[[Doc], bool], str], None]

# Linux x86-64 ABI numbers (stable; the agent's own come from the kernel's headers)
NR = {"ptrace": 101, "kill": 62, "capget": 125, "capset": 126, "memfd_create": 319, "splice": 275,
      "prctl": 157, "unshare": 272, "setns": 308, "setfsuid": 122}
PTRACE_ATTACH, PTRACE_PEEKDATA, PTRACE_DETACH = 16, 2, 17
PR_SET_NAME = 15
CLONE_NEWUTS, CLONE_NEWPID = 0x04000000, 0x20000000
CAP_NET_RAW = 1 << 13
PIPE_BUF_FLAG_CAN_MERGE = 0x10
MFD_CLOEXEC = 1
EUID, EGID = 4321, 4322
EPERM, ENOENT, EIO = 1, 2, 5
NOBODY = 65534
NAME = b"rsk-renamed"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _sc(name: str, *args: Any) -> int:
    conv = [a if isinstance(a, (bytes, ctypes.Array)) else ctypes.c_long(a) for a in args]
    ret = _libc.syscall(ctypes.c_long(NR[name]), *conv)
    return -ctypes.get_errno() if ret == -1 else int(ret)


def _host_pid() -> int:
    """This process's pid in the host's pid namespace (NSpid's first)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[1])
    return os.getpid()


def act(top: Path) -> None:
    """The child's process activity (root, cwd = top)."""
    real = top / "real"
    pids: dict[str, int] = {"child": os.getpid()}
    sleeper = os.fork()
    if sleeper == 0:
        os.execv("/bin/sleep", ["sleep", "30"])
    pids["sleeper"] = sleeper
    time.sleep(0.3)
    assert _sc("ptrace", PTRACE_ATTACH, sleeper, 0, 0) == 0
    os.waitpid(sleeper, 0)
    assert _sc("ptrace", PTRACE_PEEKDATA, sleeper, 8, 0) == -EIO
    assert _sc("ptrace", PTRACE_DETACH, sleeper, 0, 0) == 0
    os.kill(sleeper, signal.SIGSTOP)
    os.kill(sleeper, signal.SIGCONT)
    os.setresgid(-1, EGID, -1)
    os.setresuid(-1, EUID, -1)
    os.setresuid(-1, 0, -1)
    os.setresgid(-1, 0, -1)
    hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    assert _sc("capget", hdr, data) == 0
    full = data[0], data[3]
    data[0] &= ~CAP_NET_RAW & 0xFFFFFFFF
    assert _sc("capset", hdr, data) == 0
    data[0], data[3] = full
    assert _sc("capset", hdr, data) == 0
    os.close(_sc("memfd_create", b"rsk-memfd", MFD_CLOEXEC))
    (real / "spliced").write_bytes(b"spliced data")
    r, w = os.pipe()
    os.write(w, b"x" * 64)
    os.read(r, 64)
    src = os.open(real / "spliced", os.O_RDONLY)
    assert _sc("splice", src, 0, w, 0, 4, 0) == 4
    for fd in (src, r, w):
        os.close(fd)
    assert _sc("prctl", PR_SET_NAME, NAME, 0, 0, 0) == 0
    os.chdir("lnk")
    try:
        os.chdir("missing")
    except FileNotFoundError:
        pass
    os.chdir(top)
    # the namespace it leaves (not pid 1's: a sandbox's pid 1 may be another user's, its ns unreadable)
    uts = os.open("/proc/self/ns/uts", os.O_RDONLY)
    assert _sc("unshare", CLONE_NEWUTS) == 0
    assert _sc("setns", uts, CLONE_NEWUTS) == 0
    os.close(uts)
    os.kill(sleeper, signal.SIGKILL)
    os.waitpid(sleeper, 0)
    pids.update(_refused_in_a_pid_namespace(top))
    (top / "activity.json").write_text(json.dumps(pids))


def _refused_in_a_pid_namespace(top: Path) -> dict[str, int]:
    """A new pid namespace whose init runs a root sleeper (its pid 2) and an
    unprivileged process refused a signal and an attach on it."""
    report = top / "pidns.json"
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            assert _sc("unshare", CLONE_NEWPID) == 0
            init = os.fork()
            if init == 0:
                _pidns_init(report)
            _, status = os.waitpid(init, 0)
            code = os.waitstatus_to_exitcode(status)
        finally:
            os._exit(code)
    _, status = os.waitpid(helper, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the pid namespace part failed"
    out: dict[str, int] = json.loads(report.read_text())
    return out


def _pidns_init(report: Path) -> None:
    code = 1
    try:
        rd, wr = os.pipe()
        sleeper = os.fork()
        if sleeper == 0:
            os.write(wr, f"{_host_pid()}\n".encode())
            os.execv("/bin/sleep", ["sleep", "30"])
        sleeper_host = int(os.read(rd, 64).split()[0])
        time.sleep(0.3)  # exec'd
        refused = os.fork()
        if refused == 0:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            refusals = (_sc("kill", sleeper, signal.SIGTERM), _sc("ptrace", PTRACE_ATTACH, sleeper, 0, 0))
            os.write(wr, f"{_host_pid()} {int(refusals == (-EPERM, -EPERM))}\n".encode())
            os._exit(0)
        host, refused_both = (int(v) for v in os.read(rd, 64).split())
        os.waitpid(refused, 0)
        os.kill(sleeper, signal.SIGKILL)
        os.waitpid(sleeper, 0)
        report.write_text(json.dumps({"refused": host, "ns_sleeper": sleeper_host}))
        code = 0 if refused_both else 2
    finally:
        os._exit(code)


def checks(top: Path, docs: list[Doc], types: set[str], one: CheckFn, *, precise: bool) -> None:
    """The activity checks, through the workload's ``one(name, type, docs, pred, what)``."""
    try:
        pids = json.loads((top / "activity.json").read_text())
    except (OSError, ValueError):
        pids = {}
    child, sleeper = pids.get("child", -1), pids.get("sleeper", -1)

    def of(event_type: str, pid: int) -> list[Doc]:
        return [d for d in docs if d["type"] == event_type and d["process"]["pid"] == pid] if event_type in types else []

    def tracee_is_sleeper(x: Doc, request: int) -> bool:
        t = x["ptrace"].get("tracee", {})
        return x["ptrace"]["request"] == request and t.get("pid") == sleeper and t.get("comm") == "sleep"

    one("ptrace attach names the tracee", "ptrace", of("ptrace", child),
        lambda x: tracee_is_sleeper(x, PTRACE_ATTACH) and x["ptrace"]["retval"] == 0,
        f"request PTRACE_ATTACH, tracee pid {sleeper} (sleep), retval 0")
    one("ptrace peek and detach name the tracee", "ptrace", of("ptrace", child),
        lambda x: tracee_is_sleeper(x, PTRACE_DETACH) and any(
            tracee_is_sleeper(y, PTRACE_PEEKDATA) and y["ptrace"]["retval"] == -EIO for y in of("ptrace", child)),
        f"PTRACE_PEEKDATA (-EIO) and PTRACE_DETACH with tracee pid {sleeper}")
    one("signal names its target", "signal", of("signal", child),
        lambda x: x["signal"]["type"] == signal.SIGSTOP and x["signal"].get("target", {}).get("pid") == sleeper
        and x["signal"]["pid"] == sleeper and x["signal"]["retval"] == 0,
        f"SIGSTOP to pid {sleeper}, target named")
    one("setuid: the new effective uid", "setuid", of("setuid", child),
        lambda x: x["setuid"]["euid"] == EUID and x["setuid"]["uid"] == 0 and x["process"]["euid"] == EUID,
        f"euid {EUID}, uid 0, process.euid {EUID}")
    one("setgid: the new effective gid", "setgid", of("setgid", child),
        lambda x: x["setgid"]["egid"] == EGID and x["setgid"]["gid"] == 0, f"egid {EGID}, gid 0")
    one("capset: the new effective set", "capset", of("capset", child),
        lambda x: not x["capset"]["cap_effective"] & CAP_NET_RAW and x["capset"]["cap_permitted"] & CAP_NET_RAW
        and x["process"]["cap_effective"] == x["capset"]["cap_effective"],
        "cap_effective without CAP_NET_RAW, cap_permitted with it")
    one("memfd_create names the memfd", "memfd_create", of("memfd_create", child),
        lambda x: x["memfd_create"]["name"] == "rsk-memfd" and x["memfd_create"]["file"]["path"] == "memfd:rsk-memfd"
        and x["memfd_create"]["file"]["is_memfd"] and x["memfd_create"]["flags"] == MFD_CLOEXEC,
        "name rsk-memfd, file memfd:rsk-memfd (is_memfd), flags MFD_CLOEXEC")
    spliced = str(top / "real" / "spliced")
    one("splice: the file and the drained pipe's flags", "splice", of("splice", child),
        lambda x: x["splice"]["file"]["path"] == spliced and x["splice"]["pipe_entry_flag"] & PIPE_BUF_FLAG_CAN_MERGE
        and not x["splice"]["pipe_exit_flag"] & PIPE_BUF_FLAG_CAN_MERGE and x["splice"]["retval"] == 4,
        f"file {spliced}, entry flag CAN_MERGE, exit flag without (a fixed kernel), retval 4")
    one("prctl PR_SET_NAME", "prctl", of("prctl", child),
        lambda x: x["prctl"]["option"] == PR_SET_NAME and x["prctl"]["new_name"] == NAME.decode()
        and x["process"]["comm"] == NAME.decode(), f"option PR_SET_NAME, new_name {NAME.decode()}")
    real = str(top / "real")
    one("chdir through a symlink: the canonical cwd", "chdir", of("chdir", child),
        lambda x: x["chdir"]["file"]["path"] == real and x["chdir"]["retval"] == 0, f"path {real}")
    one("chdir that failed", "chdir", of("chdir", child),
        lambda x: x["chdir"]["file"]["path"] == f"{real}/missing" and x["chdir"]["retval"] == -ENOENT,
        f"path {real}/missing, retval -ENOENT")
    one("unshare", "unshare", of("unshare", child),
        lambda x: x["unshare"]["flags"] == CLONE_NEWUTS and x["unshare"]["retval"] == 0, "flags CLONE_NEWUTS")
    host_uts = os.stat("/proc/self/ns/uts").st_ino  # the one the workload left and went back to
    one("setns back into the host's uts namespace", "setns", of("setns", child),
        lambda x: x["setns"]["namespace"] == {"type": CLONE_NEWUTS, "name": "uts", "inode": host_uts, "is_host": True}
        and x["setns"]["retval"] == 0, f"namespace uts, inode {host_uts}, is_host")
    refused, ns_sleeper = pids.get("refused", -1), pids.get("ns_sleeper", -1)
    if precise:
        one("refused signal in a pid namespace names the target (check_kill_permission)", "signal",
            of("signal", refused),
            lambda x: x["signal"]["retval"] == -EPERM and x["signal"].get("target", {}).get("pid") == ns_sleeper
            and x["signal"]["target"]["comm"] == "sleep", f"retval -EPERM, target pid {ns_sleeper} (sleep)")
        one("refused attach in a pid namespace names the tracee (find_get_task_by_vpid)", "ptrace",
            of("ptrace", refused),
            lambda x: x["ptrace"]["retval"] == -EPERM and x["ptrace"].get("tracee", {}).get("pid") == ns_sleeper,
            f"retval -EPERM, tracee pid {ns_sleeper}")
    else:
        one("refused signal in a pid namespace: no target without precise hooks", "signal", of("signal", refused),
            lambda x: x["signal"]["retval"] == -EPERM and "target" not in x["signal"],
            "retval -EPERM, no target (the caller's pid namespace is not the host's)")

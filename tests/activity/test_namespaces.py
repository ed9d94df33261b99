"""unshare and setns events (issue 9): which namespaces, from the kernel's
objects (the kind and inode of the namespace a file names, the process a
pidfd names), so joining the host's namespaces is visible without any
tool being executed."""

from __future__ import annotations

import os

import pytest
from activity_helpers import CLONE, ERRNO, child_output, docs_of, run_child

pytestmark = pytest.mark.root

NEWUTS, NEWNET, NEWNS = CLONE["CLONE_NEWUTS"], CLONE["CLONE_NEWNET"], CLONE["CLONE_NEWNS"]

# The host's namespaces: the test's own (the agent's reference when pid 1's
# cannot be read, as in a sandbox whose init is more privileged than root).
_JOIN = f"""
uts = os.open('/proc/self/ns/uts', os.O_RDONLY)
print('unshare=', sc('unshare', {NEWUTS}))
print('back=', sc('setns', uts, {NEWUTS}))
print('wrong=', sc('setns', uts, {NEWNET}))
pidfd = os.pidfd_open(os.getppid())
print('pidfd=', sc('setns', pidfd, {NEWUTS}))
print('ppid=', os.getppid())
plain = os.open('/proc/self/status', os.O_RDONLY)
print('plain=', sc('setns', plain, 0))
print('pid=', os.getpid())
"""


def test_unshare_then_setns_back_into_the_host_namespaces(tracer) -> None:
    host_uts = os.stat("/proc/self/ns/uts").st_ino
    with tracer.collect() as col:
        out = child_output(run_child(_JOIN))
    assert (out["unshare"], out["back"], out["wrong"], out["pidfd"], out["plain"]) == (
        0, 0, -ERRNO["EINVAL"], 0, -ERRNO["EINVAL"])
    pid = out["pid"]
    (unshare,) = docs_of(col, "unshare", pid)
    assert unshare["unshare"] == {"flags": NEWUTS, "retval": 0}
    back, wrong, by_pidfd, plain = (d["setns"] for d in docs_of(col, "setns", pid))
    assert back["retval"] == 0 and back["nstype"] == NEWUTS
    assert back["namespace"] == {"type": NEWUTS, "name": "uts", "inode": host_uts, "is_host": True}
    assert "target" not in back
    # the file names a uts namespace, the call asked for a network one
    assert wrong["retval"] == -ERRNO["EINVAL"] and wrong["namespace"]["type"] == NEWUTS
    assert wrong["nstype"] == NEWNET
    assert by_pidfd["retval"] == 0 and by_pidfd["target"]["pid"] == out["ppid"] == os.getpid()
    assert by_pidfd["target"]["file"]["path"] and by_pidfd["namespace"]["type"] == NEWUTS
    assert by_pidfd["namespace"]["is_host"] is False  # a pidfd names a process, not a namespace
    assert plain["retval"] == -ERRNO["EINVAL"] and plain["namespace"]["type"] == 0


def test_unshare_refused_and_invalid(tracer) -> None:
    with tracer.collect() as col:
        out = child_output(run_child(
            "become(NOBODY)\n"
            f"print('mount=', sc('unshare', {NEWNS}))\n"
            "print('pid=', os.getpid())\n"))
        bad = child_output(run_child("print('bad=', sc('unshare', 1)); print('pid=', os.getpid())"))
    assert out["mount"] == -ERRNO["EPERM"] and bad["bad"] == -ERRNO["EINVAL"]
    (refused,) = docs_of(col, "unshare", out["pid"])
    assert refused["unshare"] == {"flags": NEWNS, "retval": -ERRNO["EPERM"]} and refused["process"]["uid"] == 65534
    (invalid,) = docs_of(col, "unshare", bad["pid"])
    assert invalid["unshare"] == {"flags": 1, "retval": -ERRNO["EINVAL"]}


# clone and clone3 made from Python: the child returns 0 and leaves at once.
_CLONES = f"""
import ctypes, signal
def made(ret):
    if ret == 0:
        os._exit(0)
    if ret > 0:
        os.waitpid(ret, 0)
    return ret
def clone3(flags):
    args = (ctypes.c_uint64 * 8)(flags, 0, 0, 0, signal.SIGCHLD, 0, 0, 0)
    return made(sc('clone3', args, ctypes.sizeof(args)))
print('uts=', made(sc('clone', {NEWUTS} | signal.SIGCHLD, 0, 0, 0, 0)))
print('plain=', made(sc('clone', signal.SIGCHLD, 0, 0, 0, 0)))
print('user=', clone3(CLONE['CLONE_NEWUSER'] | {NEWNET}))
print('plain3=', clone3(0))
become(NOBODY)
print('refused=', clone3({NEWNS}))
print('pid=', os.getpid())
"""


def test_clone_and_clone3_into_new_namespaces(tracer) -> None:
    """A child made in new namespaces is a namespace change of its parent's
    (`unshare`), with or without an exec; plain forks are not reported."""
    newuser = CLONE["CLONE_NEWUSER"]
    with tracer.collect() as col:
        out = child_output(run_child(_CLONES))
    assert out["uts"] > 0 and out["plain"] > 0 and out["user"] > 0 and out["plain3"] > 0
    assert out["refused"] == -ERRNO["EPERM"]
    docs = [d["unshare"] for d in docs_of(col, "unshare", out["pid"])]
    assert docs == [
        {"flags": NEWUTS | 17, "retval": out["uts"]},            # clone: the low byte is SIGCHLD
        {"flags": newuser | NEWNET, "retval": out["user"]},      # clone3: from its struct clone_args
        {"flags": NEWNS, "retval": -ERRNO["EPERM"]},             # refused: nobody lacks CAP_SYS_ADMIN
    ]
    children = {out["uts"], out["user"]}
    assert not [d for d in col.of_type("unshare") if d["process"]["pid"] in children]  # reported once, by the parent

"""ptrace and signal events (issue 9): the tracee and the signal target are
the processes the kernel named, with their context and lineage; failed
calls carry -errno and, where the kernel named no task, the pid argument."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import time

import pytest
from activity_helpers import ERRNO, PTRACE, SIG, child_output, docs_of, run_child, sc

pytestmark = pytest.mark.root

SLEEP = os.path.realpath("/bin/sleep")


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([SLEEP, "60"])
    time.sleep(0.1)  # execve done: its image is /bin/sleep
    yield proc
    proc.kill()
    proc.wait()


def _wait_stopped(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    assert os.WIFSTOPPED(status), status


def test_ptrace_attach_peek_detach_name_the_tracee(tracer, sleeper) -> None:
    me, pid = os.getpid(), sleeper.pid
    with tracer.collect() as col:
        assert sc("ptrace", PTRACE["PTRACE_ATTACH"], pid, 0, 0) == 0
        _wait_stopped(pid)
        # address 8 is not mapped in the tracee: the kernel's answer is -EIO
        assert sc("ptrace", PTRACE["PTRACE_PEEKDATA"], pid, 8, 0) == -ERRNO["EIO"]
        assert sc("ptrace", PTRACE["PTRACE_DETACH"], pid, 0, 0) == 0
    docs = docs_of(col, "ptrace", me)
    by_request = {d["ptrace"]["request"]: d for d in docs}
    assert set(by_request) >= {PTRACE["PTRACE_ATTACH"], PTRACE["PTRACE_PEEKDATA"], PTRACE["PTRACE_DETACH"]}
    for request in ("PTRACE_ATTACH", "PTRACE_PEEKDATA", "PTRACE_DETACH"):
        d = by_request[PTRACE[request]]
        tracee = d["ptrace"]["tracee"]
        assert tracee["pid"] == pid and tracee["tid"] == pid, request
        assert tracee["comm"] == "sleep" and tracee["file"]["path"] == SLEEP, request
        assert tracee["uid"] == 0 and tracee["ppid"] == me, request
        assert tracee["ancestors"][0]["pid"] == me, request
        assert d["process"]["pid"] == me
    assert by_request[PTRACE["PTRACE_ATTACH"]]["ptrace"]["retval"] == 0
    assert by_request[PTRACE["PTRACE_PEEKDATA"]]["ptrace"]["address"] == 8
    assert by_request[PTRACE["PTRACE_PEEKDATA"]]["ptrace"]["retval"] == -ERRNO["EIO"]


def test_ptrace_refused_and_of_a_missing_process(tracer, sleeper) -> None:
    """An attach refused with EPERM (an unprivileged caller, a root
    process): the tracee is named (the kernel's on precise sets; the
    cache's for the pid argument on the tracepoint set: the caller is in the
    host's pid namespace). A pid nobody has: -ESRCH and only the pid."""
    missing = 4_000_000  # above pid_max's maximum (2^22)
    with tracer.collect() as col:
        out = child_output(run_child(
            "become(NOBODY)\n"
            f"print('attach=', sc('ptrace', {PTRACE['PTRACE_ATTACH']}, {sleeper.pid}, 0, 0))\n"
            f"print('peek=', sc('ptrace', {PTRACE['PTRACE_PEEKDATA']}, {missing}, 0, 0))\n"
            "print('pid=', os.getpid())\n"))
    assert out["attach"] == -ERRNO["EPERM"] and out["peek"] == -ERRNO["ESRCH"]
    docs = {d["ptrace"]["request"]: d["ptrace"] for d in docs_of(col, "ptrace", out["pid"])}
    attach = docs[PTRACE["PTRACE_ATTACH"]]
    assert attach["retval"] == -ERRNO["EPERM"]
    assert attach["tracee"]["pid"] == sleeper.pid and attach["tracee"]["file"]["path"] == SLEEP
    peek = docs[PTRACE["PTRACE_PEEKDATA"]]
    assert peek["retval"] == -ERRNO["ESRCH"] and peek["tracee"] == {"pid": missing}


def test_ptrace_traceme_names_the_caller(tracer) -> None:
    with tracer.collect() as col:
        out = child_output(run_child(
            f"print('ret=', sc('ptrace', {PTRACE['PTRACE_TRACEME']}, 0, 0, 0)); print('pid=', os.getpid())"))
    assert out["ret"] == 0
    (doc,) = docs_of(col, "ptrace", out["pid"])
    assert doc["ptrace"]["request"] == PTRACE["PTRACE_TRACEME"]
    assert doc["ptrace"]["tracee"]["pid"] == out["pid"] == doc["process"]["pid"]


def test_signals_name_their_target(tracer, sleeper) -> None:
    """kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo and
    pidfd_send_signal each name the process the signal went to."""
    me, pid = os.getpid(), sleeper.pid
    # the sleeper ignores nothing: send signals it keeps pending (stopped first)
    with tracer.collect() as col:
        os.kill(pid, signal.SIGSTOP)
        assert sc("tkill", pid, SIG["SIGCONT"]) == 0
        assert sc("tgkill", pid, pid, SIG["SIGSTOP"]) == 0
        assert sc("rt_sigqueueinfo", pid, SIG["SIGCONT"], _siginfo(me)) == 0
        assert sc("rt_tgsigqueueinfo", pid, pid, SIG["SIGSTOP"], _siginfo(me)) == 0
        pidfd = os.pidfd_open(pid)
        try:
            assert sc("pidfd_send_signal", pidfd, SIG["SIGCONT"], 0, 0) == 0
        finally:
            os.close(pidfd)
    docs = docs_of(col, "signal", me)
    sent = [(d["signal"]["type"], d["signal"]["pid"], d["signal"]["retval"]) for d in docs]
    expected = [(SIG["SIGSTOP"], pid, 0), (SIG["SIGCONT"], pid, 0), (SIG["SIGSTOP"], pid, 0),
                (SIG["SIGCONT"], pid, 0), (SIG["SIGSTOP"], pid, 0), (SIG["SIGCONT"], pid, 0)]
    assert sent == expected, sent
    for d in docs:
        target = d["signal"]["target"]
        assert target["pid"] == pid and target["comm"] == "sleep" and target["file"]["path"] == SLEEP
        assert target["ancestors"][0]["pid"] == me


def _siginfo(pid: int) -> bytes:
    """A siginfo_t rt_sigqueueinfo accepts from user space: si_code < 0
    (SI_QUEUE, -1); si_signo is the call's, the rest is not checked."""
    si_queue = -1
    return struct.pack("iii4xii", 0, 0, si_queue, pid, 0).ljust(128, b"\0")


def test_signal_refused_and_of_a_missing_process(tracer, sleeper) -> None:
    missing = 4_000_000
    with tracer.collect() as col:
        out = child_output(run_child(
            "become(NOBODY)\n"
            f"print('term=', sc('kill', {sleeper.pid}, {SIG['SIGTERM']}))\n"
            f"print('probe=', sc('kill', {missing}, 0))\n"
            "print('pid=', os.getpid())\n"))
    assert out["term"] == -ERRNO["EPERM"] and out["probe"] == -ERRNO["ESRCH"]
    docs = docs_of(col, "signal", out["pid"])
    term = next(d["signal"] for d in docs if d["signal"]["type"] == SIG["SIGTERM"])
    assert term["retval"] == -ERRNO["EPERM"] and term["pid"] == sleeper.pid
    assert term["target"]["pid"] == sleeper.pid and term["target"]["file"]["path"] == SLEEP
    assert docs[0]["process"]["uid"] == 65534
    probe = next(d["signal"] for d in docs if d["signal"]["type"] == 0)
    assert probe["retval"] == -ERRNO["ESRCH"] and probe["pid"] == missing and probe["target"] == {"pid": missing}


def test_kill_of_a_process_group_names_a_member(tracer) -> None:
    group = subprocess.Popen([SLEEP, "60"], start_new_session=True)
    try:
        time.sleep(0.1)
        with tracer.collect() as col:
            os.kill(-group.pid, signal.SIGTERM)
            group.wait()
        (doc,) = [d for d in docs_of(col, "signal", os.getpid()) if d["signal"]["type"] == SIG["SIGTERM"]]
        assert doc["signal"]["pid"] == group.pid and doc["signal"]["target"]["pid"] == group.pid
    finally:
        group.kill()
        group.wait()

"""The differential filter test's trials for the process-activity types
(issue 9; test_filters_differential.py): random rules over their approvable
fields (and others, negations included), random real calls, and the
document each call must produce - the oracle's input.

Each op is a JSON list ``[type, ...arguments]``; activity_calls.py performs
it in the workload process. A call's ``key`` identifies its document among
the alerts (the fields the op fixes).

What the oracle assumes of the kernel: a splice of a regular file's page
into a fresh pipe leaves its buffer without PIPE_BUF_FLAG_CAN_MERGE (a
kernel with the Dirty Pipe bug would show as an extra alert).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from codegen.kconstants import family_values

PTRACE, SIG, PR = family_values("ptrace"), family_values("signals"), family_values("prctl")
CLONE, MFD = family_values("clone"), family_values("memfd")

TYPES = ("ptrace", "signal", "memfd_create", "splice", "prctl", "chdir", "unshare", "setns")
FILE_TYPES = ("splice", "chdir")         # their atoms and documents are the file types'
MISSING_PID = 4_000_000                  # above any pid_max: kill() gets ESRCH
NS_KINDS = {"uts": "CLONE_NEWUTS", "ipc": "CLONE_NEWIPC"}


def _q(s: str) -> str:
    return json.dumps(s)


def random_atom(rng: random.Random, t: str) -> str:
    """One comparison of a non-file activity type's fields."""
    retval = rng.choice([f"{t}.retval == 0", f"{t}.retval < 0", f"{t}.retval != -EINVAL"])
    if t == "ptrace":
        return rng.choice([
            "ptrace.request == PTRACE_PEEKDATA", "ptrace.request in [PTRACE_PEEKTEXT, PTRACE_GETEVENTMSG]",
            "ptrace.request != PTRACE_PEEKUSR", "ptrace.address == 0", retval])
    if t == "signal":
        return rng.choice([
            "signal.type == SIGUSR1", "signal.type in [SIGUSR2, SIGWINCH]", "signal.type != SIGUSR1",
            f"signal.pid == {MISSING_PID}", retval])
    if t == "memfd_create":
        return rng.choice([
            "memfd_create.flags & MFD_CLOEXEC > 0", "memfd_create.flags & (MFD_ALLOW_SEALING | MFD_EXEC) > 0",
            'memfd_create.name == "rs-a"', 'memfd_create.name in ["rs-a", "rs-b"]', retval])
    if t == "prctl":
        return rng.choice([
            "prctl.option == PR_SET_NAME", "prctl.option in [PR_GET_DUMPABLE, PR_GET_KEEPCAPS]",
            "prctl.option != PR_SET_NAME", 'prctl.new_name == "python3"', "prctl.is_name_truncated", retval])
    if t == "unshare":
        return rng.choice([
            "unshare.flags & CLONE_NEWUTS > 0", "unshare.flags & (CLONE_NEWIPC | CLONE_FS) > 0",
            "unshare.flags == 0", retval])
    if t == "setns":
        return rng.choice([
            "setns.namespace.type & CLONE_NEWUTS > 0", "setns.namespace.type & (CLONE_NEWIPC | CLONE_NEWNET) > 0",
            "setns.nstype == 0", 'setns.namespace.name == "ipc"', "setns.namespace.is_host", retval])
    raise AssertionError(f"no atoms for {t}")


def random_op(rng: random.Random, base: Path, t: str, dirs: list[str], names: list[str]) -> list[Any]:
    if t == "ptrace":
        return ["ptrace", rng.choice(["PTRACE_PEEKDATA", "PTRACE_PEEKTEXT", "PTRACE_PEEKUSR", "PTRACE_GETEVENTMSG",
                                      "invalid"])]
    if t == "signal":
        return ["signal", rng.choice(["SIGUSR1", "SIGUSR2", "SIGWINCH", "probe", "missing"])]
    if t == "memfd_create":
        return ["memfd_create", rng.choice(["rs-a", "rs-b", "rs-c"]),
                rng.choice([0, MFD["MFD_CLOEXEC"], MFD["MFD_ALLOW_SEALING"] | MFD["MFD_CLOEXEC"], 0x4000_0000])]
    if t == "prctl":
        return ["prctl", rng.choice(["PR_SET_NAME", "PR_GET_DUMPABLE", "PR_GET_KEEPCAPS", "fault", "invalid"])]
    if t == "unshare":
        return ["unshare", rng.choice([CLONE["CLONE_NEWUTS"], CLONE["CLONE_NEWIPC"], 0, CLONE["CLONE_FS"], 1,
                                       CLONE["CLONE_NEWUTS"] | CLONE["CLONE_NEWIPC"]])]
    if t == "setns":
        kind = rng.choice(sorted(NS_KINDS))
        return ["setns", kind, rng.choice([0, CLONE[NS_KINDS[kind]], CLONE["CLONE_NEWNET"]])]
    if t == "chdir":
        return ["chdir", str(base / rng.choice(dirs + [f"{d}/{n}" for d in dirs for n in names] + ["missing"]))]
    if t == "splice":
        return ["splice", str(base / rng.choice(dirs) / rng.choice(names))]
    raise AssertionError(f"no workload for {t}")


def _ns_inode(kind: str) -> int:
    """The workload's namespaces (the test's, which the agent takes for the
    host's where pid 1's cannot be read)."""
    return os.stat(f"/proc/self/ns/{kind}").st_ino


def expected_body(op: list[Any], result: int) -> dict[str, Any]:
    """The event's own fields the call must produce (those the rules read)."""
    t = op[0]
    body: dict[str, Any] = {"retval": result}
    if t in FILE_TYPES:
        body["file"] = {"path": op[1], "name": os.path.basename(op[1])}
        if t == "splice":
            body.update(pipe_entry_flag=0, pipe_exit_flag=0)
    elif t == "ptrace":
        body.update(request=PTRACE.get(op[1], 0x7777), address=0)
    elif t == "signal":
        body.update(type=0 if op[1] in ("probe",) else SIG.get(op[1], SIG["SIGUSR1"]))
        if op[1] == "missing":
            body["pid"] = MISSING_PID
    elif t == "memfd_create":
        body.update(name=op[1], flags=op[2])
    elif t == "prctl":
        option = {"fault": "PR_SET_NAME", "invalid": None}.get(op[1], op[1])
        body["option"] = PR[option] if option else 0x7777
        if option == "PR_SET_NAME":
            body.update(new_name="" if op[1] == "fault" else "python3", is_name_truncated=False)
    elif t == "unshare":
        body["flags"] = op[1]
    elif t == "setns":
        body.update(nstype=op[2], namespace={"type": CLONE[NS_KINDS[op[1]]], "name": op[1],
                                            "inode": _ns_inode(op[1]), "is_host": True})
    return body


def key_of_op(op: list[Any]) -> tuple[Any, ...]:
    t = op[0]
    body = expected_body(op, 0)
    return (t,) + _key(t, body)


def key_of_doc(t: str, body: dict[str, Any]) -> tuple[Any, ...]:
    return (t,) + _key(t, body)


def _key(t: str, body: dict[str, Any]) -> tuple[Any, ...]:
    if t in FILE_TYPES:
        return (body["file"]["path"],)
    if t == "ptrace":
        return (body["request"],)
    if t == "signal":
        return (body["type"],)
    if t == "memfd_create":
        return (body["name"], body["flags"])
    if t == "prctl":
        return (body["option"], body.get("new_name", ""))
    if t == "unshare":
        return (body["flags"],)
    if t == "setns":
        return (body["namespace"]["name"], body["nstype"])
    raise AssertionError(t)

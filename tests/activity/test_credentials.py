"""Credential changes (issue 9): setuid, setgid, capset report the
credentials after the call, from the kernel; the process cache takes them,
so every later event of the process and its descendants' lineage show them."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from activity_helpers import CAP, ERRNO, NOBODY, child_output, docs_of, run_child

pytestmark = pytest.mark.root

TRUE = os.path.realpath("/bin/true")
UID, GID = 4321, 4322


@pytest.fixture
def shared_dir():
    """A directory any uid may write (tmp_path's parents are root's, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="rs-activity-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def test_setresuid_and_setresgid_then_later_events_and_descendants(tracer, shared_dir) -> None:
    """The child changes its ids, opens a file, then runs a grandchild: the
    open shows the new ids (the task's), and the grandchild's ancestor - the
    child's image, made at its exec as root - shows them too (the cache)."""
    marker = shared_dir / "after-setuid"
    with tracer.collect() as col:
        out = child_output(run_child(
            f"os.setresgid({GID}, {GID}, {GID}); os.setresuid({UID}, {UID}, {UID})\n"
            f"open({str(marker)!r}, 'w').close()\n"
            f"import subprocess; subprocess.run([{TRUE!r}, 'grandchild'], check=True)\n"
            "print('pid=', os.getpid())\n"))
    pid = out["pid"]
    setgid = [d for d in docs_of(col, "setgid", pid) if d["setgid"]["gid"] == GID]
    setuid = [d for d in docs_of(col, "setuid", pid) if d["setuid"]["uid"] == UID]
    assert setgid and setuid
    g, u = setgid[0], setuid[0]
    assert (g["setgid"]["gid"], g["setgid"]["egid"], g["setgid"]["fsgid"], g["setgid"]["retval"]) == (GID, GID, GID, 0)
    assert (u["setuid"]["uid"], u["setuid"]["euid"], u["setuid"]["fsuid"], u["setuid"]["retval"]) == (UID, UID, UID, 0)
    assert u["setuid"]["user"] == u["setuid"]["euser"] == ""  # no such user in /etc/passwd
    assert u["process"]["uid"] == UID and u["process"]["gid"] == GID  # the event's own context: after the call
    (opened,) = [d for d in col.of_type("open") if d["open"]["file"]["path"] == str(marker)]
    assert opened["process"]["pid"] == pid and opened["process"]["uid"] == UID and opened["process"]["euid"] == UID
    (grandchild,) = [d for d in col.of_type("exec") if d["exec"]["argv"] == [TRUE, "grandchild"]]
    parent = grandchild["process"]["ancestors"][0]
    assert parent["pid"] == pid
    assert (parent["uid"], parent["euid"], parent["gid"]) == (UID, UID, GID)


def test_setuid_refused_and_setfsuid(tracer) -> None:
    """Unprivileged setuid(0): -EPERM and the ids unchanged. setfsuid
    returns the previous fsuid (the syscall's own convention)."""
    with tracer.collect() as col:
        out = child_output(run_child(
            "become(NOBODY)\n"
            "print('setuid=', sc('setuid', 0))\n"
            "print('setfsuid=', sc('setfsuid', NOBODY))\n"
            "print('pid=', os.getpid())\n"))
    assert out["setuid"] == -ERRNO["EPERM"] and out["setfsuid"] == NOBODY
    docs = docs_of(col, "setuid", out["pid"])
    refused = [d["setuid"] for d in docs if d["setuid"]["retval"] == -ERRNO["EPERM"]]
    assert refused == [{**refused[0], "uid": NOBODY, "euid": NOBODY, "fsuid": NOBODY}]
    assert refused[0]["user"] == "nobody"
    fs = [d["setuid"] for d in docs if d["setuid"]["retval"] == NOBODY]
    assert fs and fs[0]["fsuid"] == NOBODY


def test_setgid_refused(tracer) -> None:
    with tracer.collect() as col:
        out = child_output(run_child("become(NOBODY)\nprint('ret=', sc('setgid', 0)); print('pid=', os.getpid())"))
    assert out["ret"] == -ERRNO["EPERM"]
    refused = [d for d in docs_of(col, "setgid", out["pid"]) if d["setgid"]["retval"] == -ERRNO["EPERM"]]
    assert refused and refused[0]["setgid"]["gid"] == NOBODY and refused[0]["setgid"]["group"] == "nogroup"


_CAPSET = """
import ctypes
hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)          # _LINUX_CAPABILITY_VERSION_3, this process
data = (ctypes.c_uint32 * 6)()
assert sc('capget', hdr, data) == 0
permitted = data[1] | (data[4] << 32)
keep = {keep}
data[0], data[3] = keep & 0xffffffff, keep >> 32     # effective
data[1], data[4] = permitted & 0xffffffff, permitted >> 32
print('drop=', sc('capset', hdr, data))
data[1], data[4] = 0, 0                              # permitted: none
data[0], data[3] = 0, 0
print('shrink=', sc('capset', hdr, data))
data[0], data[1] = 1, 1                              # CAP_CHOWN back: not in permitted any more
print('raise=', sc('capset', hdr, data))
open({marker!r}, 'w').close()
print('permitted=', permitted)
print('pid=', os.getpid())
"""


def test_capset_then_later_events(tracer, tmp_path) -> None:
    marker = tmp_path / "after-capset"
    keep = CAP["CAP_DAC_OVERRIDE"] | CAP["CAP_CHOWN"]
    with tracer.collect() as col:
        out = child_output(run_child(_CAPSET.format(keep=keep, marker=str(marker))))
    assert (out["drop"], out["shrink"], out["raise"]) == (0, 0, -ERRNO["EPERM"])
    docs = [d["capset"] for d in docs_of(col, "capset", out["pid"])]
    assert [(d["cap_effective"], d["cap_permitted"], d["retval"]) for d in docs] == [
        (keep, out["permitted"], 0), (0, 0, 0), (0, 0, -ERRNO["EPERM"])]
    (opened,) = [d for d in col.of_type("open") if d["open"]["file"]["path"] == str(marker)]
    assert opened["process"]["cap_effective"] == 0 and opened["process"]["cap_permitted"] == 0

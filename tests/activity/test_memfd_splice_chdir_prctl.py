"""memfd_create, splice, chdir and prctl events (issue 9): names, flags and
files from kernel objects; failed calls carry -errno and the caller's
arguments."""

from __future__ import annotations

import ctypes
import os

import pytest
from activity_helpers import ERRNO, MFD, PIPE_BUF, PR, docs_of, sc

pytestmark = pytest.mark.root

CAN_MERGE = PIPE_BUF["PIPE_BUF_FLAG_CAN_MERGE"]


def test_memfd_create_and_a_refused_one(tracer) -> None:
    me = os.getpid()
    flags = MFD["MFD_CLOEXEC"] | MFD["MFD_ALLOW_SEALING"]
    with tracer.collect() as col:
        fd = sc("memfd_create", b"rs-payload", flags)
        assert fd >= 0
        inode = os.fstat(fd).st_ino
        os.close(fd)
        bad = sc("memfd_create", b"rs-refused", 0x1000_0000)  # no such flag
    assert bad == -ERRNO["EINVAL"]
    docs = {d["memfd_create"]["retval"]: d["memfd_create"] for d in docs_of(col, "memfd_create", me)}
    ok = docs[fd]
    assert ok["name"] == "rs-payload" and ok["flags"] == flags
    f = ok["file"]
    assert f["path"] == f["name"] == "memfd:rs-payload" and f["is_memfd"] and f["inode"] == inode
    assert f["is_deleted"]  # no directory holds a memfd
    refused = docs[-ERRNO["EINVAL"]]
    assert refused["name"] == "rs-refused" and refused["flags"] == 0x1000_0000 and "file" not in refused


def test_splice_reports_the_pipe_buffer_flags_dirty_pipe_looks_at(tracer, tmp_path) -> None:
    """The Dirty Pipe sequence: fill and drain a pipe (its buffers keep
    PIPE_BUF_FLAG_CAN_MERGE), splice a file into it. A fixed kernel gives
    the spliced page-cache buffer no CAN_MERGE: entry has it, exit not."""
    me = os.getpid()
    src = tmp_path / "source"
    src.write_bytes(b"read-only data\n")
    r, w = os.pipe()
    fd = os.open(src, os.O_RDONLY)
    out = os.open(tmp_path / "sink", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(w, b"x" * 4096)
        os.read(r, 4096)
        with tracer.collect() as col:
            assert sc("splice", fd, 0, w, 0, 4, 0) == 4                 # file -> pipe
            assert sc("splice", r, 0, out, 0, 4, 0) == 4                # pipe -> file
            assert sc("splice", fd, 0, out, 0, 4, 0) == -ERRNO["EINVAL"]  # no pipe at all
    finally:
        for x in (r, w, fd, out):
            os.close(x)
    into_pipe, from_pipe, refused = (d["splice"] for d in docs_of(col, "splice", me))
    assert into_pipe["retval"] == 4 and into_pipe["file"]["path"] == str(src)
    assert into_pipe["pipe_entry_flag"] & CAN_MERGE
    assert not into_pipe["pipe_exit_flag"] & CAN_MERGE
    assert from_pipe["retval"] == 4 and from_pipe["file"]["path"] == str(tmp_path / "sink")
    assert from_pipe["pipe_entry_flag"] == from_pipe["pipe_exit_flag"] == 0  # fd_out is no pipe
    assert refused["retval"] == -ERRNO["EINVAL"] and refused["file"]["path"] == str(src)


def test_chdir_and_fchdir_name_the_new_cwd_from_the_kernel(tracer, tmp_path) -> None:
    me = os.getpid()
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "lnk").symlink_to("real")
    plain = tmp_path / "plain"
    plain.write_text("")
    old = os.getcwd()
    try:
        with tracer.collect() as col:
            os.chdir(tmp_path / "lnk")
            dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
            os.fchdir(dfd)
            os.close(dfd)
            os.chdir("real")  # relative: chdir.syscall.path keeps it as given
            os.chdir("..")
            assert sc("chdir", b"missing/dir") == -ERRNO["ENOENT"]
            ffd = os.open(plain, os.O_RDONLY)
            assert sc("fchdir", ffd) == -ERRNO["ENOTDIR"]
            os.close(ffd)
    finally:
        os.chdir(old)
    docs = [d["chdir"] for d in docs_of(col, "chdir", me)]
    assert [(d["file"]["path"], d["retval"]) for d in docs] == [
        (str(real), 0), (str(tmp_path), 0), (str(real), 0), (str(tmp_path), 0),
        (str(tmp_path / "missing/dir"), -ERRNO["ENOENT"]), (str(plain), -ERRNO["ENOTDIR"])]
    assert [d["syscall"]["path"] for d in docs] == [str(tmp_path / "lnk"), "", "real", "..", "missing/dir", ""]
    assert docs[0]["file"]["inode"] == real.stat().st_ino and docs[0]["file"]["path_source"] == "kernel"
    assert docs[4]["file"]["path_source"] == "user"


def test_prctl_set_name_and_refused_calls(tracer) -> None:
    me = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)
    before = open("/proc/thread-self/comm").read().strip()
    long_name = b"rs-a-name-longer-than-the-kernel-keeps"
    try:
        with tracer.collect() as col:
            assert sc("prctl", PR["PR_SET_NAME"], long_name, 0, 0, 0) == 0
            assert sc("prctl", PR["PR_SET_NAME"], b"rs-short", 0, 0, 0) == 0
            assert sc("prctl", PR["PR_GET_DUMPABLE"], 0, 0, 0, 0) == 1
            assert sc("prctl", PR["PR_SET_NAME"], ctypes.c_void_p(8), 0, 0, 0) == -ERRNO["EFAULT"]
            assert sc("prctl", 999_999, 0, 0, 0, 0) == -ERRNO["EINVAL"]
    finally:
        libc.prctl(PR["PR_SET_NAME"], before.encode(), 0, 0, 0)
    docs = [d for d in docs_of(col, "prctl", me) if d["process"]["tid"] == me]
    renamed, short, dumpable, fault, invalid = (d["prctl"] for d in docs)
    assert renamed == {"retval": 0, "option": PR["PR_SET_NAME"], "new_name": long_name.decode(),
                       "is_name_truncated": True}
    assert short["new_name"] == "rs-short" and short["is_name_truncated"] is False
    assert dumpable == {"retval": 1, "option": PR["PR_GET_DUMPABLE"]}
    assert fault["retval"] == -ERRNO["EFAULT"] and fault["new_name"] == ""
    assert invalid == {"retval": -ERRNO["EINVAL"], "option": 999_999}
    # each event's process.comm: the kernel's after the call (15 bytes kept)
    assert docs[0]["process"]["comm"] == long_name[:15].decode()
    assert docs[1]["process"]["comm"] == docs[2]["process"]["comm"] == "rs-short"

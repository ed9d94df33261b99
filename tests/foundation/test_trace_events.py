"""The first kernel events end to end: real syscalls in a temporary
directory, documents from the real probes (issue: foundation)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def _opens_of(col, path: str) -> list[dict]:
    return col.of_type("open", lambda d: d["open"]["file"]["path"] == path)


def test_exec_of_copied_binary_reports_its_path_and_parent(tracer, tmp_path: Path) -> None:
    exe = tmp_path / "my true"
    shutil.copy("/bin/true", exe)
    with tracer.collect() as col:
        proc = subprocess.run([str(exe), "arg one", "two"], check=True)
    assert proc.returncode == 0
    execs = col.of_type("exec", lambda d: d["exec"]["file"]["path"] == str(exe))
    assert len(execs) == 1, [d["exec"]["file"]["path"] for d in col.of_type("exec")]
    doc = execs[0]
    assert doc["process"]["ppid"] == os.getpid()
    assert doc["exec"]["file"]["inode"] == exe.stat().st_ino
    assert doc["exec"]["file"]["name"] == "my true"
    assert doc["exec"]["argv"] == [str(exe), "arg one", "two"]  # argv[0] included (fields.py)
    assert doc["exec"]["args"] == "arg one two"
    assert doc["process"]["ancestors"][0]["pid"] == os.getpid()


def test_open_aliases_report_one_canonical_path(tracer, tmp_path: Path) -> None:
    real = tmp_path / "dir" / "target.txt"
    real.parent.mkdir()
    real.write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    (tmp_path / "other").mkdir()
    ino = real.stat().st_ino
    old_cwd = os.getcwd()
    with tracer.collect() as col:
        os.chdir(tmp_path / "dir")
        try:
            os.close(os.open("target.txt", os.O_RDONLY))                   # relative
            os.close(os.open("../other/../dir/./target.txt", os.O_RDONLY))  # .. and .
        finally:
            os.chdir(old_cwd)
        os.close(os.open(tmp_path / "link" / "target.txt", os.O_RDONLY))  # symlinked dir
        dirfd = os.open(tmp_path / "dir", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.close(os.open("target.txt", os.O_RDONLY, dir_fd=dirfd))     # openat dirfd
        finally:
            os.close(dirfd)
    opens = _opens_of(col, str(real))
    assert len(opens) == 4, sorted({d["open"]["file"]["path"] for d in col.of_type("open")})
    for doc in opens:
        assert doc["open"]["file"]["inode"] == ino
        assert doc["open"]["retval"] >= 0
        assert doc["open"]["file"]["name"] == "target.txt"
        assert doc["process"]["pid"] == os.getpid()


def test_open_on_a_second_mount_reports_the_path_through_the_mount_point(tracer, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "rsagent-test", str(mnt)], check=True)
    try:
        f = mnt / "sub" / "on-tmpfs"
        f.parent.mkdir()
        f.write_text("y")
        with tracer.collect() as col:
            os.close(os.open(f, os.O_RDONLY))
        opens = _opens_of(col, str(f))
        assert len(opens) == 1
        file = opens[0]["open"]["file"]
        assert file["filesystem"] == "tmpfs"
        assert file["inode"] == f.stat().st_ino
        mount_ids = {int(x.split()[0]) for x in Path("/proc/self/mountinfo").read_text().splitlines()
                     if x.split()[4] == str(mnt)}
        assert file["mount_id"] in mount_ids
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_failed_open_reports_negative_errno_and_the_requested_path(tracer, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "missing.txt"
    old_cwd = os.getcwd()
    with tracer.collect() as col:
        os.chdir(tmp_path)
        try:
            with pytest.raises(FileNotFoundError):
                os.open("nope/../nope/missing.txt", os.O_RDONLY)
        finally:
            os.chdir(old_cwd)
    opens = _opens_of(col, str(missing))
    assert len(opens) == 1
    assert opens[0]["open"]["retval"] == -2  # -ENOENT


def test_fork_and_exit_are_reported_with_exit_code(tracer) -> None:
    with tracer.collect() as col:
        proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(7)"])
        assert proc.wait() == 7
    forks = col.of_type("fork", lambda d: d["process"]["pid"] == proc.pid)
    assert len(forks) == 1
    assert forks[0]["process"]["ppid"] == os.getpid()
    exits = col.of_type("exit", lambda d: d["process"]["pid"] == proc.pid)
    assert len(exits) == 1
    assert (exits[0]["exit"]["cause"], exits[0]["exit"]["code"]) == ("EXITED", 7)


def test_exit_by_signal_reports_the_signal(tracer) -> None:
    with tracer.collect() as col:
        proc = subprocess.Popen(["sh", "-c", "kill -TERM $$"])
        assert proc.wait() == -15
    exits = col.of_type("exit", lambda d: d["process"]["pid"] == proc.pid)
    assert exits and (exits[-1]["exit"]["cause"], exits[-1]["exit"]["code"]) == ("SIGNALED", 15)

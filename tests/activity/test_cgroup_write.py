"""cgroup_write events (issue 17): a process moved into a cgroup by a write
of its pid to the cgroup's cgroup.procs, from tp_btf/cgroup_attach_task
(ebpf/hooks/cgroup.h): the migrated pid, the cgroup's directory walked from
the kernel's dentry and mount, the writer's process context; a rule on
``cgroup_write.pid`` with a ``set`` keyed by it (``scope_field``, as the
reference agent's default policy does) through ``rsagent run``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from activity_helpers import ERRNO, child_output, docs_of, run_child
from agentproc import start_agent

pytestmark = pytest.mark.root

MISSING_PID = int(Path("/proc/sys/kernel/pid_max").read_text())   # pids are below it: no such process


def _cgroup2_root() -> Path:
    """The cgroup v2 hierarchy's mount point (/sys/fs/cgroup, or .../unified
    on a hybrid host)."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        dev, mnt, fstype, *_ = line.split()
        if fstype == "cgroup2":
            return Path(mnt)
    pytest.skip("no cgroup v2 hierarchy mounted")


@pytest.fixture
def cgroup() -> Iterator[Path]:
    """A test-owned child cgroup, removed after (its processes moved back out)."""
    root = _cgroup2_root()
    path = root / f"rs-test-cgw-{os.getpid()}"
    path.mkdir()
    try:
        yield path
    finally:
        for pid in (path / "cgroup.procs").read_text().split():
            try:
                (root / "cgroup.procs").write_text(pid)
            except ProcessLookupError:
                pass
        for _ in range(50):   # an exited process leaves the cgroup when it is reaped
            try:
                path.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["/bin/sleep", "60"])


def _write_pids(procs: Path, *pids: int) -> dict[str, int]:
    """A child process writes each pid to ``procs`` (one write each) and
    prints the errno of each write (0: it succeeded), then its own pid."""
    code = "import errno\n"
    for i, pid in enumerate(pids):
        code += (f"fd = os.open({str(procs)!r}, os.O_WRONLY)\n"
                 f"try:\n    os.write(fd, b'{pid}'); print('w{i}=', 0)\n"
                 f"except OSError as exc:\n    print('w{i}=', exc.errno)\n"
                 "os.close(fd)\n")
    return child_output(run_child(code + "print('pid=', os.getpid())\n"))


def test_a_write_to_cgroup_procs_is_reported(tracer, cgroup: Path) -> None:
    sleeper = _sleeper()
    try:
        with tracer.collect() as col:
            out = _write_pids(cgroup / "cgroup.procs", sleeper.pid, MISSING_PID)
        # the sleeper moved; the missing pid's write failed before any migration
        assert out["w0"] == 0 and out["w1"] == ERRNO["ESRCH"]
        assert (cgroup / "cgroup.procs").read_text().split() == [str(sleeper.pid)]
    finally:
        sleeper.kill()
        sleeper.wait()
    (doc,) = docs_of(col, "cgroup_write", out["pid"])     # one event: the failed write made none
    body = doc["cgroup_write"]
    assert body["pid"] == sleeper.pid
    st = cgroup.stat()
    f = body["file"]
    assert (f["path"], f["name"], f["inode"], f["filesystem"]) == (str(cgroup), cgroup.name, st.st_ino, "cgroup2")
    assert f["mode"] == st.st_mode and f["path_source"] == "kernel"
    assert "retval" not in body     # recorded inside the write, once the migration succeeded
    # the writer's context: the python child, its parent this test
    proc = doc["process"]
    assert proc["ppid"] == os.getpid() and proc["uid"] == 0
    assert proc["file"]["path"] == os.path.realpath(sys.executable)
    assert not [d for d in col.of_type("cgroup_write") if d["cgroup_write"].get("pid") == MISSING_PID]


def test_moving_a_process_back_to_the_parent_is_reported_too(tracer, cgroup: Path) -> None:
    sleeper = _sleeper()
    parent = cgroup.parent
    try:
        (cgroup / "cgroup.procs").write_text(str(sleeper.pid))
        with tracer.collect() as col:
            out = _write_pids(parent / "cgroup.procs", sleeper.pid)
        assert out["w0"] == 0
    finally:
        sleeper.kill()
        sleeper.wait()
    (doc,) = docs_of(col, "cgroup_write", out["pid"])
    assert doc["cgroup_write"]["pid"] == sleeper.pid
    assert doc["cgroup_write"]["file"]["path"] == str(parent)


def test_a_thread_moved_by_cgroup_threads_is_reported_under_its_process(tracer, cgroup: Path) -> None:
    """cgroup.threads moves one thread (into a threaded child cgroup): one
    event, whose pid is the thread's process's."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, threading\n"
         "t = threading.Thread(target=sys.stdin.readline); t.start(); print(t.native_id, flush=True); t.join()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    threaded = cgroup / "threads"
    try:
        assert proc.stdout is not None and proc.stdin is not None
        tid = int(proc.stdout.readline())
        assert tid != proc.pid
        (cgroup / "cgroup.procs").write_text(str(proc.pid))
        threaded.mkdir()
        (threaded / "cgroup.type").write_text("threaded")
        with tracer.collect() as col:
            out = _write_pids(threaded / "cgroup.threads", tid)
        assert out["w0"] == 0
        assert (threaded / "cgroup.threads").read_text().split() == [str(tid)]
        assert sorted((cgroup / "cgroup.threads").read_text().split()) == [str(proc.pid)]
    finally:
        proc.kill()
        proc.wait()
        for _ in range(50):
            try:
                threaded.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
    (doc,) = docs_of(col, "cgroup_write", out["pid"])
    assert doc["cgroup_write"]["pid"] == proc.pid
    assert doc["cgroup_write"]["file"]["path"] == str(threaded)


def test_a_rule_on_cgroup_write_pid_keys_a_variable_of_the_migrated_process(tmp_path: Path, cgroup: Path,
                                                                              built_objects: None) -> None:
    """The rule fires on the write; its `set` (scope_field: cgroup_write.pid)
    gives the variable to the migrated process, whose next open a second
    rule sees it in; its open before the migration did not."""
    marker = tmp_path / "rs-cgw-marker"
    marker.write_text("")
    policy = tmp_path / "cgroup_write.policy"
    policy.write_text(f"""rules:
  - id: cgw_moved
    expression: cgroup_write.pid > 0 && cgroup_write.file.name == "{cgroup.name}"
    actions:
      - set:
          name: cgw_mark
          value: moved
          scope: process
          scope_field: cgroup_write.pid
  - id: cgw_marked_open
    expression: open.file.name == "rs-cgw-marker" && ${{process.cgw_mark}} == "moved"
""")
    agent = start_agent(policy, tmp_path)
    # the process to move: opens the marker, waits for a line, opens it again
    target = subprocess.Popen(
        [sys.executable, "-c", f"import sys; open({str(marker)!r}).close(); print('ready', flush=True); "
         f"sys.stdin.readline(); open({str(marker)!r}).close()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout is not None and target.stdin is not None
        assert target.stdout.readline().strip() == "ready"
        out = _write_pids(cgroup / "cgroup.procs", target.pid)
        assert out["w0"] == 0
        (moved,) = agent.wait_for("cgw_moved")
        target.stdin.write("go\n")
        target.stdin.flush()
        assert target.wait(timeout=10) == 0
        (marked,) = agent.wait_for("cgw_marked_open")
    finally:
        if target.poll() is None:
            target.kill()
            target.wait()
    agent.stop()
    ev = moved["event"]
    assert ev["type"] == "cgroup_write" and ev["cgroup_write"]["pid"] == target.pid
    assert ev["process"]["pid"] == out["pid"]
    assert ev["cgroup_write"]["file"]["path"] == str(cgroup)
    assert marked["event"]["process"]["pid"] == target.pid
    # the open before the migration did not match; the one after did, once
    assert [a["rule_id"] for a in agent.alerts()].count("cgw_marked_open") == 1

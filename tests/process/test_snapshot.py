"""Processes older than the agent: a separate Tracer started after them must
know their executable, argv, credentials, container and ancestors from its
/proc snapshot (issue 5)."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest
from proc_helpers import DASH, pids

pytestmark = pytest.mark.root

CGROUP_V2 = Path("/sys/fs/cgroup/unified")


def test_process_started_before_the_agent_has_file_argv_and_ancestors(built_objects: None, tmp_path: Path) -> None:
    from harness import Tracer

    cid = secrets.token_hex(32)
    top = CGROUP_V2 / f"rsagent-snap-{os.getpid()}"
    cgroup = top / f"docker-{cid}.scope"
    cgroup.mkdir(parents=True)
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    script = f"read x < {fifo}; /bin/true child-of-old; exit 4"
    old = subprocess.Popen(["sh", "-c", script])      # returns once sh is exec'd
    try:
        (cgroup / "cgroup.procs").write_text(f"{old.pid}\n")
        tracer = Tracer().start()                      # predated by `old`
        try:
            with tracer.collect(until=lambda d: d["type"] == "exit" and d["process"]["pid"] == old.pid) as col:
                with open(fifo, "w") as f:
                    f.write("go\n")
                assert old.wait() == 4
        finally:
            tracer.stop()
    finally:
        if old.poll() is None:
            old.kill()
            old.wait()
        cgroup.rmdir()
        top.rmdir()

    exits = col.of_type("exit", lambda d: d["process"]["pid"] == old.pid)
    assert len(exits) == 1
    proc = exits[0]["process"]
    assert proc["from_snapshot"] is True
    assert proc["file"]["path"] == DASH
    assert proc["file"]["inode"] == os.stat(DASH).st_ino
    assert proc["file"]["mount_id"] > 0 and proc["file"]["filesystem"]
    assert proc["argv"] == ["sh", "-c", script]
    assert proc["container"]["id"] == cid                       # from /proc/PID/cgroup
    assert proc["uid"] == os.getuid() and proc["cap_effective"] > 0
    assert proc["created_at"] > 0
    assert pids(proc["ancestors"])[0] == os.getpid()
    assert proc["ancestors"][-1]["pid"] == 1
    assert not any(a.get("truncated") for a in proc["ancestors"])
    assert (exits[0]["exit"]["cause"], exits[0]["exit"]["code"]) == ("EXITED", 4)
    # its child, forked after the agent started, descends from the snapshot image
    child = col.of_type("exec", lambda d: d["exec"]["argv"] == ["/bin/true", "child-of-old"])
    assert len(child) == 1
    parent = child[0]["process"]["ancestors"][0]
    assert parent["pid"] == old.pid and parent["from_snapshot"] is True
    assert parent["cookie"] == proc["cookie"]
    assert child[0]["process"]["container"]["id"] == cid        # from the kernel walk



_FAMILY = """
import os, subprocess, sys
if os.environ.get("RS_ROLE") == "exec":
    sys.stdin.read()
    sys.exit()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.read(r, 1)
    os._exit(0)
e = subprocess.Popen([sys.executable, "-c", "CODE = " + repr(CODE) + "\\n" + CODE],
                     env={**os.environ, "RS_ROLE": "exec"}, stdin=subprocess.PIPE)
print(pid, e.pid, flush=True)
sys.stdin.read()
os.write(w, b"x")
e.stdin.close()
e.wait()
os.waitpid(pid, 0)
"""


def test_snapshot_tells_forked_children_from_execd_ones() -> None:
    """is_thread (forked, not exec'd since) for processes older than the
    agent: a forked child keeps its parent's stack address; a child that
    exec'd the same program with the same arguments gets a new one."""
    import subprocess
    import sys

    from agent.clock import BootClock
    from agent.process.cache import ProcessCache

    code = "CODE = " + repr(_FAMILY) + "\n" + _FAMILY
    head = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert head.stdout is not None
        forked, execd = (int(x) for x in head.stdout.readline().split())
        cache = ProcessCache(BootClock())
        cache.snapshot()
        images = {p.pid: p for p in cache._live.values()}
        assert images[forked].is_thread and images[forked].argv == images[head.pid].argv
        # same program, same arguments: only the stack tells
        assert images[execd].argv == images[head.pid].argv and images[execd].file == images[head.pid].file
        assert not images[execd].is_thread
        assert not images[head.pid].is_thread
    finally:
        assert head.stdin is not None
        head.stdin.close()
        head.wait(10)

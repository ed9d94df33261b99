"""Process lineage on the real kernel: ancestors recorded at fork time, kept
for orphans and exited parents (issue 5)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from proc_helpers import DASH, TRUE, kernel_ppid, pids

pytestmark = pytest.mark.root


def _exec_with_argv(col, argv: list[str]) -> dict:
    execs = col.of_type("exec", lambda d: d["exec"]["argv"] == argv)
    assert len(execs) == 1, [d["exec"]["argv"] for d in col.of_type("exec")]
    return execs[0]


def test_app_sh_child_lists_ancestors_nearest_first(tracer, tmp_path: Path) -> None:
    app = tmp_path / "webapp"
    shutil.copy(DASH, app)
    script = "echo $$; sh -c 'echo $$; /bin/true child-of-sh; :'; :"
    with tracer.collect() as col:
        out = subprocess.run([str(app), "-c", script], capture_output=True, text=True, check=True).stdout
    app_pid, sh_pid = (int(x) for x in out.split())
    doc = _exec_with_argv(col, ["/bin/true", "child-of-sh"])
    proc = doc["process"]
    anc = proc["ancestors"]
    assert pids(anc)[:3] == [sh_pid, app_pid, os.getpid()]
    assert proc["ppid"] == sh_pid
    assert anc[0]["file"]["path"] == DASH and anc[0]["argv"][:2] == ["sh", "-c"]
    assert anc[1]["file"]["path"] == str(app) and anc[1]["file"]["inode"] == app.stat().st_ino
    assert anc[1]["argv"] == [str(app), "-c", script]
    assert anc[2]["file"]["path"] == os.path.realpath(sys.executable)
    assert anc[-1]["pid"] == 1 and not any(a.get("truncated") for a in anc)
    # exec.* is the new image; process.parent is ancestors[0]
    assert doc["exec"]["file"]["path"] == TRUE and doc["exec"]["argv0"] == "/bin/true"
    assert doc["exec"]["args"] == "child-of-sh" and doc["exec"]["argc"] == 2
    assert doc["exec"]["is_thread"] is False and doc["exec"]["cookie"] not in {a["cookie"] for a in anc}


def test_fork_event_is_the_child_with_its_parent_first(tracer) -> None:
    with tracer.collect() as col:
        child = subprocess.Popen(["sh", "-c", "exit 0"])
        child.wait()
    forks = col.of_type("fork", lambda d: d["process"]["pid"] == child.pid)
    assert len(forks) == 1
    fork = forks[0]
    assert fork["fork"]["parent_pid"] == os.getpid() and fork["fork"]["child_pid"] == child.pid
    # forked, not exec'd yet: a copy of the parent's image, a "thread" in the reference's sense
    assert fork["process"]["is_thread"] is True
    assert fork["process"]["file"]["path"] == os.path.realpath(sys.executable)
    assert pids(fork["process"]["ancestors"])[0] == os.getpid()
    exe = col.of_type("exec", lambda d: d["process"]["pid"] == child.pid)[0]
    assert exe["process"]["created_at"] == fork["process"]["created_at"]  # fork time, kept by exec
    assert exe["process"]["cookie"] != fork["process"]["cookie"]           # one cookie per image


def test_grandchild_exec_after_its_parent_exited_keeps_the_original_chain(tracer, tmp_path: Path) -> None:
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    script = f"(read x < {fifo}; exec /bin/true grandchild-after-parent) >/dev/null & echo $!"
    cache = tracer.runtime.processes
    with tracer.collect(until=lambda d: d["type"] == "exec"
                        and d["exec"]["argv"][-1:] == ["grandchild-after-parent"]) as col:
        sh = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True)
        assert sh.stdout is not None
        gc_pid = int(sh.stdout.readline())
        assert sh.wait() == 0                      # the parent exited and was reaped
        assert kernel_ppid(gc_pid) != sh.pid       # the grandchild is an orphan now
        tracer.sync()
        fallbacks = cache.stats.procfs_fallbacks
        with open(fifo, "w") as f:
            f.write("go\n")
    doc = _exec_with_argv(col, ["/bin/true", "grandchild-after-parent"])
    assert doc["process"]["pid"] == gc_pid
    anc = doc["process"]["ancestors"]
    assert pids(anc)[:2] == [sh.pid, os.getpid()]
    assert doc["process"]["ppid"] == sh.pid
    # the parent's image came from history (its exec), not from /proc (it is gone)
    assert anc[0]["file"]["path"] == DASH and anc[0]["argv"] == ["sh", "-c", script]
    assert "from_snapshot" not in anc[0] and "source" not in anc[0]
    assert cache.stats.procfs_fallbacks == fallbacks
    exit_idx = [i for i, d in enumerate(col.docs) if d["type"] == "exit" and d["process"]["pid"] == sh.pid]
    exec_idx = col.docs.index(doc)
    assert exit_idx and exit_idx[0] < exec_idx


def test_execve_from_a_non_leader_thread(tracer) -> None:
    code = ("import os, threading\n"
            "t = threading.Thread(target=lambda: os.execv('/bin/true', ['/bin/true', 'from-thread']))\n"
            "t.start(); t.join()\n")
    with tracer.collect() as col:
        proc = subprocess.Popen([sys.executable, "-c", code])
        assert proc.wait() == 0
    doc = _exec_with_argv(col, ["/bin/true", "from-thread"])
    assert doc["process"]["pid"] == proc.pid
    assert doc["process"]["tid"] == proc.pid          # de_thread made the caller the leader
    assert doc["exec"]["old_tid"] not in (0, proc.pid)
    assert pids(doc["process"]["ancestors"])[0] == os.getpid()
    assert doc["exec"]["file"]["path"] == TRUE
    # the threads killed by de_thread are not an exit of the process
    mine = [d for d in col.docs if d["process"]["pid"] == proc.pid]
    exits = [i for i, d in enumerate(mine) if d["type"] == "exit"]
    assert len(exits) == 1 and exits[0] > mine.index(doc)
    assert mine[exits[0]]["exit"]["code"] == 0 and mine[exits[0]]["process"]["file"]["path"] == TRUE


def test_shebang_script_reports_the_script_and_its_interpreter(tracer, tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh -e\nexit 0\n")
    script.chmod(0o755)
    wrapper = tmp_path / "wrapper"                 # a script whose interpreter is a script
    wrapper.write_text(f"#!{script}\n")
    wrapper.chmod(0o755)
    with tracer.collect() as col:
        subprocess.run([str(script), "x"], check=True)
        subprocess.run(["sh", "-c", "./job.sh y; :"], cwd=tmp_path, check=True)
        subprocess.run([str(wrapper)], check=True)
    direct = _exec_with_argv(col, ["/bin/sh", "-e", str(script), "x"])["exec"]
    relative = _exec_with_argv(col, ["/bin/sh", "-e", "./job.sh", "y"])["exec"]
    for e in (direct, relative):
        assert e["file"]["path"] == str(script)
        assert e["file"]["inode"] == script.stat().st_ino
        assert "resolved_from_name" not in e["file"]  # from the kernel's struct file
        assert e["interpreter"]["file"]["path"] == DASH
        assert e["interpreter"]["file"]["inode"] == os.stat(DASH).st_ino
        assert e["comm"] == "job.sh"
    nested = col.of_type("exec", lambda d: d["exec"]["file"].get("path") == str(wrapper))
    assert len(nested) == 1
    assert nested[0]["exec"]["interpreter"]["file"]["path"] == DASH


def test_argv_is_bounded_and_flagged_when_truncated(tracer) -> None:
    fits = ["/bin/true", "y" * 4084]               # 10 + 4085 bytes = 4095: the limit
    long = ["/bin/true"] + [f"{i}" * 1000 for i in range(6)]
    with tracer.collect() as col:
        subprocess.run(fits, check=True)
        subprocess.run(long, check=True)
    full = _exec_with_argv(col, fits)["exec"]
    assert full["args_truncated"] is False
    cut = col.of_type("exec", lambda d: d["exec"]["argv"][:2] == long[:2])
    assert len(cut) == 1
    e = cut[0]["exec"]
    assert e["args_truncated"] is True
    assert len("\0".join(e["argv"]).encode()) == 4095  # RS_ARGS_MAX - 1 bytes kept
    assert e["argv"][:4] == long[:4] and long[4].startswith(e["argv"][4])
    assert "envp" not in e                               # environment capture is opt-in


def test_environment_capture_is_opt_in_and_bounded(built_objects: None) -> None:
    from harness import Tracer

    t = Tracer(capture_env=True).start()
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RS_TEST_SECRET": "s3cr3t"}
        with t.collect() as col:
            subprocess.run(["/bin/true", "with-env"], env=env, check=True)
            subprocess.run(["/bin/true", "with-big-env"], env={**env, "BIG": "z" * 8000}, check=True)
        small = _exec_with_argv(col, ["/bin/true", "with-env"])["exec"]
        assert "RS_TEST_SECRET=s3cr3t" in small["envp"] and "RS_TEST_SECRET" in small["envs"]
        assert small["envs_truncated"] is False
        big = _exec_with_argv(col, ["/bin/true", "with-big-env"])["exec"]
        assert big["envs_truncated"] is True
        assert len("\0".join(big["envp"]).encode()) <= 4095
    finally:
        t.stop()

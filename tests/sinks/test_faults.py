"""The agent's own failure modes around its sinks (issue 11): a full
filesystem under jsonl:, a reader that closes stdout, symlinked paths."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sinkutil import RSAGENT, RULE, read_jsonl, sink_report, start_agent, trigger, wait_until

pytestmark = pytest.mark.root


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_full_filesystem_under_jsonl_keeps_the_agent_running(built_objects: None, tmp_path: Path,
                                                               small_fs: Path) -> None:
    alerts = small_fs / "alerts.jsonl"
    other = tmp_path / "other.jsonl"
    agent = start_agent(tmp_path, [f"jsonl:{alerts}", f"jsonl:{other}"])
    filler = fill(small_fs)
    trigger(agent.watched, 30, rate=50)
    wait_until(lambda: len(read_jsonl(other)) >= 30, 10, "the other sink did not get 30 alerts")
    time.sleep(1.0)
    assert agent.alive()
    log = agent.log()
    assert f"sink jsonl:{alerts}: write failed: No space left on device" in log
    assert log.count("No space left on device") == 1      # once per burst
    filler.unlink()                                        # space comes back
    trigger(agent.watched, 30, rate=50)
    wait_until(lambda: len(read_jsonl(alerts)) >= 60, 15, "the sink did not resume")
    stderr = agent.stop()
    got = read_jsonl(alerts)                               # every line whole
    assert [a["timestamp"] for a in got] == [a["timestamp"] for a in read_jsonl(other)]
    assert len(got) == 60 and {a["rule_id"] for a in got} == {RULE}
    report = sink_report(stderr, f"jsonl:{alerts}")
    assert report["errors"] >= 1 and report["written"] == 60
    assert f"sink jsonl:{alerts}: delivering again after" in stderr


def test_closed_stdout_is_logged_and_the_other_sinks_go_on(built_objects: None, tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    agent = start_agent(tmp_path, ["-", f"jsonl:{other}"], stdout=subprocess.PIPE)
    assert agent.proc.stdout is not None
    agent.proc.stdout.close()                              # the reader goes away
    trigger(agent.watched, 20, rate=50)
    wait_until(lambda: len(read_jsonl(other)) >= 20, 10, "the other sink did not get 20 alerts")
    trigger(agent.watched, 20, rate=50)
    wait_until(lambda: len(read_jsonl(other)) >= 40, 10, "the other sink stopped")
    assert agent.alive()
    stderr = agent.stop()
    assert "sink stdout: write failed: Broken pipe; closing it" in stderr
    assert stderr.count("closing it") == 1
    report = sink_report(stderr, "stdout")
    assert report["written"] == 0 and report.get("closed", 0) == 40


def test_symlinked_sink_path_is_refused(built_objects: None, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    link = tmp_path / "alerts.jsonl"
    link.symlink_to(victim)
    proc = subprocess.run([RSAGENT, "trace", "--output", f"jsonl:{link}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"jsonl:{link}: cannot open {link}: {link} is a symlink" in proc.stderr
    assert victim.read_text() == "keep\n"


def test_ready_file_is_never_written_through_a_symlink(built_objects: None, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    ready = tmp_path / "ready"
    ready.symlink_to(victim)
    proc = subprocess.Popen([RSAGENT, "trace", "--output", f"jsonl:{tmp_path}/t.jsonl", "--ready-file", str(ready)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: not ready.is_symlink(), 60, "trace did not write its ready file")
        assert int(ready.read_text()) == proc.pid
        assert victim.read_text() == "keep\n"
        assert os.stat(ready).st_mode & 0o777 == 0o644
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def test_trace_into_a_closed_pipe_stops(built_objects: None, tmp_path: Path) -> None:
    """`rsagent trace | head -n 3`: once its only sink is gone, trace has
    nothing left to do and exits 0 (run keeps going: its other duties stay)."""
    proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", f"{RSAGENT} trace | head -n 3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # events to print (a quiet machine has none): opens, until trace is gone
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            (tmp_path / "touched").write_text("x")
            time.sleep(0.05)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert len(out.splitlines()) == 3
    assert "sink stdout: write failed: Broken pipe; closing it" in err

"""Hook-set fallback on the real kernel (issue 11): this kernel has no fentry
trampolines, so asking for `--hook-set fentry,tracepoint` makes the fentry
programs genuinely fail in the kernel; the agent must come up on the
tracepoint set, say so (set, program, the kernel's error), count it, report
real events, and record in its capture which hook set and filters were in
force from when - through a reload to another filter shape too. A single
set that cannot load is a clear error, exit 1 (docs/interfaces.md)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from agentproc import RSAGENT, start_agent, wait_log

from agent.capture import CaptureReader

pytestmark = pytest.mark.root

RULEC = str(Path(sys.executable).parent / "rulec")


def _policy(watched: Path, other: Path | None = None) -> str:
    text = f'rules:\n  - id: watched_open\n    expression: open.file.path == "{watched}"\n'
    if other is not None:  # another event type: another filter shape, a handover
        text += f'  - id: other_chmod\n    expression: chmod.file.path == "{other}"\n'
    return text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fentry_then_tracepoint_comes_up_on_tracepoint(built_objects: None, tmp_path: Path) -> None:
    watched, other = tmp_path / "watched", tmp_path / "other"
    watched.write_text("x")
    other.write_text("y")
    policy = tmp_path / "fallback.policy"
    policy.write_text(_policy(watched))
    capture = tmp_path / "run.capture"
    port = _free_port()
    log = tmp_path / "agent.log"
    agent = start_agent(policy, tmp_path, "--hook-set", "fentry,tracepoint", "--metrics", f"127.0.0.1:{port}",
                        "--record", str(capture), stderr=log)

    text = log.read_text()
    warning = re.search(r"WARNING: the fentry hook set failed at (load|attach) \(program (rs_fentry_\w+)\): "
                        r"(.+); falling back to the tracepoint hook set", text)
    assert warning is not None, text[-3000:]
    assert "errno" in warning.group(3), warning.group(0)     # the kernel's error, as it said it
    assert "(tracepoint hook set, generation 1)" in text

    os.close(os.open(watched, os.O_RDONLY))
    alerts = agent.wait_for("watched_open")
    assert [a["event"]["open"]["file"]["path"] for a in alerts] == [str(watched)]

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    series = [m for m in metrics.splitlines() if "hook_set" in m]
    assert re.search(rf'^rsagent_hook_set_failures_total{{hook_set="fentry",stage="{warning.group(1)}"}} 1(\.0)?$',
                     metrics, re.M), series
    assert re.search(r'^rsagent_hook_set_info{hook_set="tracepoint"} 1(\.0)?$', metrics, re.M), series

    # a reload to another shape stays on the set that came up
    policy.write_text(_policy(watched, other))
    agent.proc.send_signal(signal.SIGHUP)
    wait_log(log, "handover to generation 2", 120)
    os.chmod(other, 0o640)
    assert [a["event"]["chmod"]["file"]["path"] for a in agent.wait_for("other_chmod")] == [str(other)]
    stderr = agent.stop()
    assert stderr.count("falling back") == 1, stderr    # the reload did not try fentry again

    reader = CaptureReader(capture)
    assert reader.header["hook_set"] == "fentry"          # the first one tried: the next item says what came up
    events = list(reader.events())
    changes = reader.filter_changes
    assert [(c["generation"], c["hook_set"]) for c in changes] == [(1, "tracepoint"), (2, "tracepoint")], changes
    assert set(changes[0]["filters"]["types"]) == {"open"}
    assert set(changes[1]["filters"]["types"]) == {"open", "chmod"}
    assert "chmod" in changes[1]["event_types"] and "chmod" not in changes[0]["event_types"]
    # each change is in the stream where it took effect: before the first event, the chmod after the second
    chmods = [i for i, e in enumerate(events) if e["type"] == "chmod"]
    assert changes[0]["event_index"] == 0 and chmods and min(chmods) >= changes[1]["event_index"] > 0
    assert changes[1]["t"] > changes[0]["t"]

    out = subprocess.run([RULEC, "replay", str(capture), "--policy", str(policy)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert re.search(r"from \S+, event #\d+ \(generation 2, hook set tracepoint\): in-kernel filters on", out.stdout), out.stdout
    assert "    chmod: " in out.stdout


def test_a_single_set_that_cannot_load_is_an_error(built_objects: None, tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    policy = tmp_path / "fentry.policy"
    policy.write_text(_policy(watched))
    out = subprocess.run([RSAGENT, "run", "--policy", str(policy), "--hook-set", "fentry",
                          "--ready-file", str(tmp_path / "ready")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert re.search(r"rsagent: error: the fentry hook set failed at (load|attach): .*program rs_fentry_\w+.*"
                     r"\(errno \d+\).*\(see `rsagent probe`\)", out.stderr), out.stderr
    assert "found no fentry" in out.stderr          # the probe had said so
    assert not (tmp_path / "ready").exists()


def test_hook_set_names_are_checked(tmp_path: Path) -> None:
    out = subprocess.run([RSAGENT, "run", "--hook-set", "fentry,lsm"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "unknown hook set 'lsm' (known: fentry, kprobe, tracepoint" in out.stderr

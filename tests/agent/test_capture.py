"""The capture file format (agent/capture.py) without the kernel: what the
reader says about files that are not captures, newer versions, captures cut
short, and the size bound; `rulec replay`'s errors."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from agent.capture import CaptureError, CaptureReader, CaptureWriter, header
from agent.kstats import TypeStats

RULEC = str(Path(sys.executable).parent / "rulec")


def _doc(i: int, path: str = "/etc/passwd") -> dict[str, Any]:
    return {"type": "open", "timestamp": 1_800_000_000_000_000_000 + i * 1000,
            "open": {"file": {"path": f"{path}", "name": os.path.basename(path)}, "flags": 0},
            "process": {"pid": 100 + i, "comm": "cat", "file": {"path": "/usr/bin/cat"}}}


def _write(path: Path, n: int, **kw: Any) -> CaptureWriter:
    w = CaptureWriter(path, header(command="record", hook_set="tracepoint", event_types=None, filters=None), **kw)
    for i in range(n):
        w.event(_doc(i, f"/srv/{os.urandom(6).hex()}/{i}"))
    return w


def test_round_trip_header_events_trailer(tmp_path: Path) -> None:
    w = _write(tmp_path / "c.cap", 10)
    w.close({"open": TypeStats(seen=12, sent=10, dropped_approver=2)})
    assert stat.S_IMODE((tmp_path / "c.cap").stat().st_mode) == 0o600
    r = CaptureReader(tmp_path / "c.cap")
    assert r.header["kind"] == "rsagent-capture" and r.header["hook_set"] == "tracepoint"
    docs = list(r.events())
    assert len(docs) == 10 and docs[3]["process"]["pid"] == 103
    assert r.trailer is not None and r.trailer["events"] == 10 and r.problems == []
    assert r.counters["open"]["dropped_approver"] == 2


def test_a_capture_cut_short_is_replayed_with_a_warning(tmp_path: Path) -> None:
    w = _write(tmp_path / "c.cap", 2000)
    w.tick()
    w._next_flush = 0  # the periodic sync flush
    w.tick()
    data = (tmp_path / "c.cap").read_bytes()   # before close: no trailer, no gzip end
    (tmp_path / "cut.cap").write_bytes(data)
    w.close()
    r = CaptureReader(tmp_path / "cut.cap")
    docs = list(r.events())
    assert 0 < len(docs) <= 2000 and r.trailer is None
    assert len(r.problems) == 1 and "ends abruptly" in r.problems[0]


def test_size_bound(tmp_path: Path) -> None:
    full: list[int] = []
    w = _write(tmp_path / "c.cap", 20000, max_bytes=64 << 10, on_full=lambda: full.append(1))
    w.close()
    assert full == [1] and w.stats.full and w.stats.not_recorded > 0
    assert (tmp_path / "c.cap").stat().st_size <= 64 << 10
    r = CaptureReader(tmp_path / "c.cap")
    assert len(list(r.events())) == w.stats.events
    assert r.trailer is not None and r.trailer["not_recorded"] == w.stats.not_recorded


@pytest.mark.parametrize(("content", "message"), [
    (b"not gzip at all", "not gzip-compressed"),
    (gzip.compress(b'{"some": "json"}\n'), "no capture header"),
    (gzip.compress(json.dumps({"kind": "rsagent-capture", "version": 99}).encode() + b"\n"), "version 99"),
])
def test_not_a_capture(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "x").write_bytes(content)
    with pytest.raises(CaptureError, match=message):
        CaptureReader(tmp_path / "x")
    out = subprocess.run([RULEC, "replay", str(tmp_path / "x"), "--policy", str(_policy(tmp_path))],
                         capture_output=True, text=True)
    assert out.returncode == 2 and message in out.stderr


def _policy(d: Path, expression: str = 'open.file.path == "/etc/passwd"') -> Path:
    p = d / "p.policy"
    p.write_text(f"rules:\n  - id: r\n    expression: {expression}\n")
    return p


def test_replay_reports_a_policy_error_with_its_position(tmp_path: Path) -> None:
    w = _write(tmp_path / "c.cap", 1)
    w.close()
    out = subprocess.run([RULEC, "replay", str(tmp_path / "c.cap"), "--policy",
                          str(_policy(tmp_path, 'open.file.path == ')) ], capture_output=True, text=True)
    assert out.returncode == 1 and f"{tmp_path}/p.policy:3:" in out.stderr


def test_explain_usage_errors(tmp_path: Path) -> None:
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps(_doc(0)))
    policy = _policy(tmp_path)
    out = subprocess.run([RULEC, "explain", "--policy", str(policy), "--event", str(ev), "--rule", "nope"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--rule nope: no enabled rule" in out.stderr
    ev.write_text("{")
    out = subprocess.run([RULEC, "explain", "--policy", str(policy), "--event", str(ev)], capture_output=True, text=True)
    assert out.returncode == 2 and "invalid JSON" in out.stderr


def test_replay_warns_about_event_types_the_capture_lacks(tmp_path: Path) -> None:
    w = CaptureWriter(tmp_path / "c.cap", header(command="run", hook_set="tracepoint", event_types=["open"],
                                                 filters={"policy": ["x.policy"], "types": {}, "discarders": False}))
    w.event(_doc(0))
    w.close()
    p = tmp_path / "p.policy"
    p.write_text('rules:\n  - id: r\n    expression: open.file.path == "/etc/passwd"\n'
                 '  - id: e\n    expression: exec.file.path == "/usr/bin/nc"\n')
    out = subprocess.run([RULEC, "replay", str(tmp_path / "c.cap"), "--policy", str(p)],
                         capture_output=True, text=True, check=True)
    assert "the capture has no exec events" in out.stdout
    assert "only holds what they let through" in out.stdout
    assert "  r       1" in out.stdout


def test_replay_needs_no_root() -> None:
    with tempfile.TemporaryDirectory(prefix="rsagent-replay-") as tmp:
        d = Path(tmp)
        os.chmod(d, 0o755)   # (pytest's tmp_path is under a 0700 directory)
        w = _write(d / "c.cap", 3)
        w.close()
        policy = _policy(d, 'open.file.path =~ "/srv/**"')
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", RULEC, "replay",
               str(d / "c.cap"), "--policy", str(policy), "--format", "json"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode == 2 and f"{d}/c.cap: cannot read: Permission denied" in out.stderr  # 0600
        os.chmod(d / "c.cap", 0o644)
        os.chmod(policy, 0o644)
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["policy"]["rules"]["r"]["alerts"] == 3

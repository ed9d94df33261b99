"""`rsagent probe` and `rsagent trace` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

RSAGENT = str(Path(sys.executable).parent / "rsagent")


def test_probe_detects_this_kernels_hooks(built_objects: None) -> None:
    out = subprocess.run([RSAGENT, "probe", "--json"], check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    feats = {name: f["available"] for name, f in report["features"].items()}
    # The development kernel: tracepoints yes; kprobe/fentry/lsm no - detected by trying.
    assert feats["tracepoint"] and feats["tp_btf"] and feats["raw_tp"] and feats["ringbuf"]
    assert not feats["kprobe"] and not feats["fentry"] and not feats["lsm"]
    assert "failed" in report["features"]["fentry"]["detail"]
    assert report["btf"] is True
    assert report["hook_set"] == "tracepoint"
    text = subprocess.run([RSAGENT, "probe"], check=True, capture_output=True, text=True).stdout
    assert "hook set      tracepoint" in text


def _start_trace(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    ready = tmp_path / "ready"
    proc = subprocess.Popen([RSAGENT, "trace", "--ready-file", str(ready), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "trace did not become ready"
        time.sleep(0.05)
    return proc, ready


def test_trace_streams_documents_and_stops_cleanly_on_sigterm(built_objects: None, tmp_path: Path) -> None:
    target = tmp_path / "watched file"
    target.write_text("z")
    jsonl = tmp_path / "out" / "events.jsonl"
    proc, ready = _start_trace(tmp_path, "--output", "-", "--output", f"jsonl:{jsonl}")
    assert int(ready.read_text()) == proc.pid
    subprocess.run(["cat", str(target)], check=True, capture_output=True)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    docs = [json.loads(line) for line in out.split("\n") if line]
    cat_opens = [d for d in docs if d["type"] == "open" and d["open"]["file"]["path"] == str(target)]
    assert len(cat_opens) == 1
    assert cat_opens[0]["process"]["comm"] == "cat"
    assert cat_opens[0]["process"]["file"]["path"] == "/usr/bin/cat"
    # The jsonl sink got the same documents, one per line.
    file_docs = [json.loads(line) for line in jsonl.read_text().split("\n") if line]
    assert len(file_docs) == len(docs)
    # The agent's own activity is never reported (no feedback loop).
    assert not [d for d in docs if d["process"]["pid"] == proc.pid]
    # Counters are reported at exit.
    assert "kernel counters:" in err and "lost=0" in err


def test_trace_sigint_also_exits_zero(built_objects: None, tmp_path: Path) -> None:
    proc, _ = _start_trace(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_bad_sink_is_a_usage_error(built_objects: None) -> None:
    proc = subprocess.run([RSAGENT, "trace", "--output", "kafka:x"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown sink" in proc.stderr and "jsonl:PATH" in proc.stderr


def test_missing_objects_say_how_to_build(tmp_path: Path) -> None:
    proc = subprocess.run([RSAGENT, "probe", "--objects", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "make build" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_not_root_is_refused_clearly(built_objects: None) -> None:
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", RSAGENT, "probe"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "must run as root" in proc.stderr


def test_process_cache_max_below_one_is_a_usage_error() -> None:
    for command in ("run", "trace"):
        proc = subprocess.run([RSAGENT, command, "--process-cache-max", "0"], capture_output=True, text=True)
        assert proc.returncode == 2
        assert "--process-cache-max: must be at least 1, got 0" in proc.stderr

"""`rsagent run` with the bundled default policy, started once for the whole
scenario suite, and the alerts it writes.

The agent runs as an operator starts it (a subprocess, `--output jsonl:`,
`--ready-file`), with one extra policy file, marker.policy, whose single rule
fires on an open of a path no program uses. Opening such a path is a
barrier: the ring buffer is consumed in order, so once the marker's alert is
in the file, the alerts of everything that happened before it are too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "rules"
MARKER_POLICY = Path(__file__).resolve().parent / "marker.policy"
MARKER_RULE = "detection_suite_marker"
MARKER_DIR = "/nonexistent-rsagent-detection"
MARKER_NAME = "rsagent-detection-marker"
RSAGENT = str(Path(sys.executable).parent / "rsagent")
READY_TIMEOUT = 180.0   # the first run of a policy shape compiles its BPF objects
ALERT_TIMEOUT = 30.0    # generous: the agent evaluates in Python on a shared 2-core machine
RINGBUF_MB = 64

Alert = dict[str, Any]
SUMMARY_KEY = pytest.StashKey[str]()  # the line test_detection.py leaves for conftest.py to print


@dataclass(frozen=True)
class Root:
    """A process a scenario started: it and its descendants are the scenario's.

    Matched on pid and creation time (pids are reused: pid_max is 32768 here)."""

    pid: int
    started_ns: int

    def covers(self, proc: dict[str, Any]) -> bool:
        return proc.get("pid") == self.pid and proc.get("created_at", 0) >= self.started_ns - 2_000_000_000


@dataclass(frozen=True)
class Marker:
    """A string in a command line the scenario controls (a request served by a
    daemon it did not start): the process or one of its ancestors carries it."""

    text: str

    def covers(self, proc: dict[str, Any]) -> bool:
        return any(self.text in arg for arg in proc.get("argv") or ())


Origin = Root | Marker


def lineage(alert: Alert) -> list[dict[str, Any]]:
    proc = alert["event"].get("process", {})
    return [proc, *proc.get("ancestors", [])]


def from_origins(alert: Alert, origins: list[Origin]) -> bool:
    return any(o.covers(p) for p in lineage(alert) for o in origins)


class AlertLog:
    """The alerts file, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.alerts: list[Alert] = []

    def refresh(self) -> list[Alert]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        new = [json.loads(line) for line in lines if line]
        self.alerts += new
        return new

    def since(self, index: int) -> list[Alert]:
        self.refresh()
        return self.alerts[index:]

    def wait(self, pred: Callable[[Alert], bool], start: int, timeout: float) -> Alert | None:
        deadline = time.monotonic() + timeout
        while True:
            for a in self.since(start):
                if pred(a):
                    return a
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


class DetectionAgent:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.alerts_path = workdir / "alerts.jsonl"
        self.log = AlertLog(self.alerts_path)
        self.stderr_path = workdir / "agent.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None

    def start(self) -> DetectionAgent:
        ready = self.workdir / "agent.ready"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [RSAGENT, "run", "-v", "--policy", str(POLICY_DIR), "--policy", str(MARKER_POLICY),
             "--output", f"jsonl:{self.alerts_path}", "--ready-file", str(ready),
             # the machine is shared: a burst of another test's events must not overflow the
             # ring buffer (and if it does, the counters say so every second)
             "--ringbuf-mb", str(RINGBUF_MB), "--stats-interval", "1"],
            stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"rsagent run exited {self.proc.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise TimeoutError(f"rsagent run was not ready within {READY_TIMEOUT} s: {self.stderr()}")
            time.sleep(0.05)
        self.barrier()
        return self

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def barrier(self, timeout: float = ALERT_TIMEOUT) -> None:
        """Return once every event before this call has been evaluated."""
        start = len(self.log.alerts)
        tag = uuid.uuid4().hex
        path = f"{MARKER_DIR}/{tag}/{MARKER_NAME}"
        deadline = time.monotonic() + timeout
        while True:
            # Re-opened every second: a burst elsewhere may overflow the ring buffer.
            try:
                os.close(os.open(path, os.O_RDONLY))
            except FileNotFoundError:
                pass
            found = self.log.wait(lambda a: a["rule_id"] == MARKER_RULE
                                  and a["event"]["open"]["file"]["path"] == path, start, 1.0)
            if found is not None:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"rsagent run exited {self.proc.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the agent did not report the barrier open within {timeout} s")

    def counters_lines(self) -> int:
        return sum(1 for line in self.stderr().splitlines() if "kernel counters:" in line)

    def lost(self) -> int:
        """Events lost so far (ring buffer full), once the agent has logged its
        counters again after this call (they are logged every second)."""
        seen = self.counters_lines()
        deadline = time.monotonic() + 10
        while self.counters_lines() <= seen and time.monotonic() < deadline:
            time.sleep(0.1)
        return sum(lost_events(self.stderr()).values())

    def stop(self) -> str:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._stderr.close()
        assert self.proc.returncode == 0, self.stderr()
        return self.stderr()


def lost_events(stderr: str) -> dict[str, int]:
    """Events the kernel could not hand to the agent (ring buffer full), by type,
    from the last counters the agent logged (cumulative)."""
    out: dict[str, int] = {}
    lines = [line for line in stderr.splitlines() if "kernel counters:" in line]
    for line in lines[-1:]:
        for part in line.split("kernel counters:", 1)[1].split(";"):
            name, _, rest = part.strip().partition(": ")
            for kv in rest.split():
                k, _, v = kv.partition("=")
                if k == "lost" and int(v):
                    out[name] = int(v)
    return out


def iter_rules(alerts: list[Alert]) -> Iterator[str]:
    for a in alerts:
        if a["rule_id"] != MARKER_RULE:
            yield a["rule_id"]

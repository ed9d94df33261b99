"""`rsagent run` as a subprocess, the way an operator starts it."""

from __future__ import annotations

import bisect
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RSAGENT = str(Path(sys.executable).parent / "rsagent")


@dataclass
class AgentRun:
    proc: subprocess.Popen[str]
    alerts_path: Path
    stderr: str = ""
    log_path: Path | None = None

    def alerts(self) -> list[dict[str, Any]]:
        if not self.alerts_path.exists():
            return []
        return [json.loads(line) for line in self.alerts_path.read_text().split("\n") if line]

    def wait_for(self, rule_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [a for a in self.alerts() if a["rule_id"] == rule_id]
            if found:
                return found
            time.sleep(0.1)
        return []

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        self.stderr = self.log_path.read_text() if self.log_path is not None else err
        assert self.proc.returncode == 0, self.stderr
        return self.stderr


STARTED: list[AgentRun] = []


def reap() -> None:
    """Stop every agent a test started and left running (a failed assertion
    before agent.stop()): no orphan keeps probes attached after the test."""
    while STARTED:
        run = STARTED.pop()
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(30)


def start_agent(policy: Path, workdir: Path, *extra: str, stderr: Path | None = None) -> AgentRun:
    """``stderr``: a file for the agent's log (readable while it runs),
    instead of a pipe read at stop."""
    ready = workdir / "agent.ready"
    alerts = workdir / "alerts.jsonl"
    ready.unlink(missing_ok=True)
    err = open(stderr, "w") if stderr is not None else subprocess.PIPE
    proc = subprocess.Popen(
        [RSAGENT, "run", "-v", "--policy", str(policy), "--output", f"jsonl:{alerts}",
         "--ready-file", str(ready), *extra],
        stdout=subprocess.DEVNULL, stderr=err, text=True)
    if stderr is not None:
        err.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"rsagent run exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError("rsagent run did not become ready in 60 s")
        time.sleep(0.05)
    run = AgentRun(proc, alerts, log_path=stderr)
    STARTED.append(run)
    return run


def counters(stderr: str) -> dict[str, dict[str, int]]:
    """Parse the 'kernel counters:' line the agent logs at exit."""
    line = [x for x in stderr.splitlines() if "kernel counters:" in x][-1]
    out: dict[str, dict[str, int]] = {}
    for part in line.split("kernel counters:", 1)[1].split(";"):
        name, _, rest = part.strip().partition(": ")
        out[name] = {k: int(v) for k, v in (kv.split("=") for kv in rest.split())}
    return out


def wait_log(log: Path, needle: str, timeout: float) -> str:
    """The agent's log once it holds ``needle`` (AssertionError after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while needle not in (text := log.read_text()):
        if time.monotonic() > deadline:
            raise AssertionError(f"the agent did not log {needle!r} in {timeout} s:\n{text[-3000:]}")
        time.sleep(0.05)
    return text


class OpenLoop:
    """Opens ``path`` about every millisecond on a thread while in the
    ``with`` block; ``stamps`` holds each open's (start, end) in ns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamps: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop)

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.time_ns()
            os.close(os.open(self.path, os.O_RDONLY))
            self.stamps.append((t0, time.time_ns()))
            time.sleep(0.001)

    def __enter__(self) -> OpenLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def opened(self) -> int:
        return len(self.stamps)

    def unalerted(self, alerts: list[dict[str, Any]]) -> list[tuple[int, int]]:
        """Opens with no alert within 0.3 ms of them (they are 1 ms apart)."""
        seen = sorted(a["timestamp"] for a in alerts)
        return [(a, b) for a, b in self.stamps
                if bisect.bisect_left(seen, a - 300_000) == bisect.bisect_right(seen, b + 300_000)]


def handover_policy(watched: Path, other: Path, with_chmod: bool) -> str:
    """An open rule on ``watched``; with ``with_chmod`` also a chmod rule on
    ``other`` (another event type, another approver: another filter shape)."""
    text = f'rules:\n  - id: watched_open\n    expression: open.file.path == "{watched}"\n'
    if with_chmod:
        text += f'  - id: other_chmod\n    expression: chmod.file.path == "{other}"\n'
    return text

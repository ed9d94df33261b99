"""Real agents and real servers for the sink and deployment tests (tests/sinks, tests/deploy).

``start_agent`` runs `rsagent run` as an operator would, with a policy whose
one rule matches opens of one file, and the outputs the test gives;
``trigger`` opens that file at a steady rate from the test process (the
agent reports every process but its own). Servers are started with
``start_server`` and stopped by the autouse fixture if a test fails first.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RSAGENT = str(Path(sys.executable).parent / "rsagent")
RULE = "watched_open"

_started: list[subprocess.Popen[bytes]] = []


def reap() -> None:
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_policy(workdir: Path, watched: Path, severity: str = "high") -> Path:
    policy = workdir / "sinks.policy"
    policy.write_text(
        "version: 1.0.0\n"
        "rules:\n"
        f"  - id: {RULE}\n"
        "    description: the watched file was opened\n"
        f'    expression: open.file.path == "{watched}"\n'
        f"    tags: {{severity: {severity}}}\n")
    return policy


@dataclass
class Agent:
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    watched: Path
    returncode: int | None = None
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.returncode = self.proc.wait(timeout)
        self.stderr = self.log()
        assert self.returncode == 0, self.stderr
        return self.stderr

    def alive(self) -> bool:
        return self.proc.poll() is None


def start_agent(workdir: Path, outputs: list[str], *extra: str, watched: Path | None = None,
                stdout: Any = subprocess.DEVNULL, env: dict[str, str] | None = None) -> Agent:
    watched = watched or workdir / "watched"
    watched.touch()
    policy = write_policy(workdir, watched)
    ready = workdir / "agent.ready"
    ready.unlink(missing_ok=True)
    stderr_path = workdir / "agent.stderr"
    args = [RSAGENT, "run", "-v", "--policy", str(policy), "--ready-file", str(ready),
            "--spool-dir", str(workdir / "spool"), *extra]
    for out in outputs:
        args += ["--output", out]
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(args, stdout=stdout, stderr=err, env={**os.environ, **(env or {})})
    _started.append(proc)
    deadline = time.monotonic() + 90
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"rsagent run exited {proc.returncode}: {stderr_path.read_text()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"rsagent run did not become ready in 90 s: {stderr_path.read_text()}")
        time.sleep(0.05)
    return Agent(proc, stderr_path, watched)


def trigger(path: Path, count: int, rate: float = 0.0) -> None:
    """Open ``path`` ``count`` times, ``rate`` opens per second (0: at once)."""
    start = time.monotonic()
    for i in range(count):
        if rate:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        os.close(os.open(path, os.O_RDONLY))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a JSON-lines file (one being written may be cut)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]


def wait_until(pred: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(interval)


def sink_report(stderr: str, name: str) -> dict[str, int]:
    """The exit line of one sink: 'sink NAME: 12 written, 3 dropped (queue_full=3), 0 error(s)'."""
    lines = [x for x in stderr.splitlines() if f"sink {name}: " in x and " written" in x]
    assert lines, f"no exit report for sink {name} in:\n{stderr}"
    line = lines[-1]
    out = {"written": int(re.search(r"(\d+) written", line).group(1)),  # type: ignore[union-attr]
           "errors": int(re.search(r"(\d+) error", line).group(1))}  # type: ignore[union-attr]
    for reason, n in re.findall(r"(\w+)=(\d+)", line):
        out[reason] = int(n)
    return out


def counters(stderr: str) -> dict[str, dict[str, int]]:
    line = [x for x in stderr.splitlines() if "kernel counters:" in x][-1]
    out: dict[str, dict[str, int]] = {}
    for part in line.split("kernel counters:", 1)[1].split(";"):
        name, _, rest = part.strip().partition(": ")
        out[name] = {k: int(v) for k, v in (kv.split("=") for kv in rest.split())}
    return out


def alert_paths(alerts: list[dict[str, Any]]) -> list[int]:
    """The event timestamps of the alerts, in arrival order (unique per open)."""
    return [a["timestamp"] for a in alerts]


def start_server(args: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, **kw)
    _started.append(proc)
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

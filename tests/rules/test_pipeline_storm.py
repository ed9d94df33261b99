"""The agent's loop keeps running under a storm of matching events: periodic
counter lines come every second, the loss is reported while it happens (log
and alert stream), SIGTERM stops it within 2 s, with the drain and the
counters logged (the ring buffer's callback only decodes, and stops the poll
after a batch: agent/runtime.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agentproc import RSAGENT

pytestmark = pytest.mark.root

STORM = """
import os, sys
path = sys.argv[1]
while True:
    os.close(os.open(path, os.O_RDONLY))
"""


def _lines(path: Path, needle: str) -> list[str]:
    return [x for x in path.read_text().splitlines() if needle in x]


def test_sigterm_during_a_storm_of_matching_opens(tmp_path: Path, built_objects: None) -> None:
    watched = tmp_path / "watched"
    watched.write_text("x")
    policy = tmp_path / "p.policy"
    policy.write_text(f'rules:\n  - id: storm\n    expression: open.file.path == "{watched}"\n')
    ready, log, alerts = tmp_path / "ready", tmp_path / "agent.log", tmp_path / "alerts.jsonl"
    with open(log, "w") as err:
        agent = subprocess.Popen([RSAGENT, "run", "-v", "--policy", str(policy), "--output", f"jsonl:{alerts}",
                                  "--ready-file", str(ready), "--stats-interval", "1", "--ringbuf-mb", "1"],
                                 stdout=subprocess.DEVNULL, stderr=err)
    writers: list[subprocess.Popen[bytes]] = []
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert agent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the agent did not become ready"
            time.sleep(0.05)
        before = len(_lines(log, "kernel counters:"))
        # two writers, one per core: more matching events than the agent can take
        writers = [subprocess.Popen([sys.executable, "-c", STORM, str(watched)]) for _ in range(2)]
        time.sleep(1.0)
        # process lifecycle during the storm: 200 fork+exec+exit
        subprocess.run(["sh", "-c", "for i in $(seq 200); do /bin/true; done"], check=True)
        time.sleep(2.5)
        periodic = _lines(log, "kernel counters:")[before:]
        assert len(periodic) >= 3, f"expected a counter line every second during the storm: {periodic}"
        assert alerts.exists() and alerts.stat().st_size > 0
        # loss is said while it happens: a warning, and a record in the alert stream
        assert _lines(log, "events lost in the last"), "no live loss warning during the storm"
        deadline = time.monotonic() + 10
        while b'"rule_id":"rsagent_events_lost"' not in alerts.read_bytes():
            assert time.monotonic() < deadline, "no rsagent_events_lost record in the alert stream"
            time.sleep(0.2)
        t0 = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=30)
        took = time.monotonic() - t0
    finally:
        for w in writers:
            w.kill()
            w.wait()
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    text = log.read_text()
    assert code == 0, text[-2000:]
    assert took <= 2.0, f"SIGTERM took {took:.2f} s during the storm"
    final = _lines(log, "kernel counters:")[-1]
    assert "open: seen=" in final
    counters = {part.strip().split(":")[0]: dict(kv.split("=") for kv in part.strip().split(": ", 1)[1].split())
                for part in final.split("kernel counters:", 1)[1].split(";")}
    # the storm fills the file events' buffer; the lifecycle buffer loses nothing
    assert int(counters["open"]["lost"]) > 0
    for t in ("exec", "fork", "exit"):
        assert int(counters[t]["lost"]) == 0 and int(counters[t]["sent"]) >= 200, (t, counters[t])
    assert "rules:" in text and "events evaluated" in text
    # the drain either finished or said what it left (never silent)
    assert "drain deadline" in text or "left" not in text.split("kernel counters:")[-1]
    os.unlink(watched)

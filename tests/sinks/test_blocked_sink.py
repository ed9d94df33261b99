"""A sink that blocks for 5 s stalls neither the agent nor the other sinks
(issue 16): the kernel loses nothing, the other sink gets every alert, and
what the blocked sink's full queue dropped is counted.

The blocked sink is a ``jsonl:`` FIFO whose reader reads nothing for 5 s.
With synchronous sinks the event loop would block in write(2) on the full
pipe, the 1 MiB ring buffer would overflow under the 6000 opens, and the
file sink would miss the lost events: this test would fail.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest
from sinkutil import RULE, counters, read_jsonl, sink_report, start_agent, trigger

pytestmark = pytest.mark.root

OPENS = 6000
RATE = 1200.0  # opens per second: 5 s of them


def test_a_blocked_sink_loses_nothing_for_the_others(built_objects: None, tmp_path: Path) -> None:
    fifo = tmp_path / "slow.fifo"
    os.mkfifo(fifo, 0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # there, but not reading yet
    good = tmp_path / "alerts.jsonl"
    agent = start_agent(tmp_path, [f"jsonl:{good}", f"jsonl:{fifo},queue=500"], "--ringbuf-mb", "1")
    received = bytearray()

    def drain() -> None:
        fcntl.fcntl(reader, fcntl.F_SETFL, fcntl.fcntl(reader, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        while chunk := os.read(reader, 1 << 16):
            received.extend(chunk)

    try:
        t0 = time.monotonic()
        trigger(agent.watched, OPENS, rate=RATE)
        assert time.monotonic() - t0 >= 4.9
        # The blocked sink's reader wakes up only now.
        thread = threading.Thread(target=drain, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while len(read_jsonl(good)) < OPENS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert agent.alive(), "a blocked sink must not stop the agent"
        stderr = agent.stop()
        thread.join(30)
    finally:
        os.close(reader)

    assert counters(stderr)["open"]["lost"] == 0, stderr
    alerts = [a for a in read_jsonl(good) if a["rule_id"] == RULE]
    assert len(alerts) == OPENS
    assert len({a["timestamp"] for a in alerts}) == OPENS
    slow = [line for line in received.split(b"\n") if line]
    report = sink_report(stderr, f"jsonl:{fifo}")
    assert report.get("queue_full", 0) > 0, stderr
    assert report["written"] == len(slow)
    assert len(slow) + report["queue_full"] == OPENS
    assert "queue full" in stderr  # logged (once per burst)

"""SIGHUP with a policy of another shape (other in-kernel filters, other
event types): the new objects are attached beside the running ones and
take over, so that a loop of opens on a watched file running through two
such reloads raises exactly one alert per open - none lost while nothing
is attached, none twice while both are (issue 11)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from agentproc import OpenLoop, counters, handover_policy, start_agent, wait_log

pytestmark = pytest.mark.root


def test_open_loop_through_two_handovers_alerts_once_per_open(built_objects: None, tmp_path: Path) -> None:
    watched, other = tmp_path / "watched", tmp_path / "other"
    watched.write_text("x")
    other.write_text("y")
    policy = tmp_path / "handover.policy"
    policy.write_text(handover_policy(watched, other, with_chmod=False))
    log = tmp_path / "agent.log"
    agent = start_agent(policy, tmp_path, stderr=log)

    with OpenLoop(watched) as loop:
        time.sleep(0.5)
        policy.write_text(handover_policy(watched, other, with_chmod=True))
        marks = [time.time_ns()]
        agent.proc.send_signal(signal.SIGHUP)
        wait_log(log, "handover to generation 2", 120)
        marks.append(time.time_ns())
        os.chmod(other, 0o640)
        time.sleep(0.5)
        policy.write_text(handover_policy(watched, other, with_chmod=False))
        marks.append(time.time_ns())
        agent.proc.send_signal(signal.SIGHUP)
        wait_log(log, "handover to generation 3", 120)
        marks.append(time.time_ns())
        time.sleep(0.5)
    stderr = agent.stop()
    alerts = [a for a in agent.alerts() if a["rule_id"] == "watched_open"]
    kernel = counters(stderr)
    assert kernel["open"]["lost"] == 0, kernel        # what the kernel could not send is not the handover's
    assert len(alerts) == loop.opened, \
        f"{len(alerts)} alerts for {loop.opened} opens; unalerted {loop.unalerted(alerts)}; reloads {marks}"
    assert all(a["event"]["open"]["file"]["path"] == str(watched) for a in alerts)
    # the second shape's own rule ran while it was in force
    assert [a["event"]["chmod"]["file"]["path"] for a in agent.alerts() if a["rule_id"] == "other_chmod"] == [str(other)]
    assert "with new in-kernel filters" in stderr

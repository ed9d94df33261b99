"""In-kernel filters observed through the kernel's own counters: approvers
drop what no rule can match; discarders learned at run time drop repeats."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from agentproc import counters, start_agent

pytestmark = pytest.mark.root


def _open_many(path: Path, n: int) -> None:
    # one process, n opens: python -c keeps the process noise low
    subprocess.run(["python3", "-c", f"import os\nfor _ in range({n}): os.close(os.open({str(path)!r}, os.O_RDONLY))"],
                   check=True)


def test_approvers_drop_other_files_in_the_kernel(tmp_path: Path, built_objects: None) -> None:
    policy = tmp_path / "p.policy"
    policy.write_text('rules:\n  - id: shadow\n    expression: open.file.path == "/etc/shadow"\n')
    other = tmp_path / "other.txt"
    other.write_text("x")
    agent = start_agent(policy, tmp_path)
    _open_many(other, 500)
    subprocess.run(["cat", "/etc/shadow"], check=True, capture_output=True)
    assert agent.wait_for("shadow")
    stats = counters(agent.stop())["open"]
    assert stats["dropped_approver"] >= 500          # every open of other.txt, at least
    assert stats["sent"] < stats["dropped_approver"] / 10
    assert stats["lost"] == 0
    assert [a["event"]["process"]["comm"] for a in agent.alerts()] == ["cat"]


def test_glob_rule_repeats_are_discarded_after_the_first(tmp_path: Path, built_objects: None) -> None:
    policy = tmp_path / "p.policy"
    # A '*' in the basename: no approver possible, so discarders do the work.
    policy.write_text('rules:\n  - id: confs\n    expression: open.file.path =~ "/etc/rsagent-test/*.conf"\n')
    unrelated = tmp_path / "data" / "file.bin"
    unrelated.parent.mkdir()
    unrelated.write_text("x")
    agent = start_agent(policy, tmp_path)
    _open_many(unrelated, 1)
    time.sleep(0.5)  # the agent evaluates the first open and pushes a discarder
    _open_many(unrelated, 300)
    stderr = agent.stop()
    stats = counters(stderr)["open"]
    assert stats["dropped_approver"] == 0             # no approvers for this policy
    assert stats["dropped_discarder"] >= 300
    assert "pushed_" in stderr

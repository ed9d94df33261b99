"""`rsagent run --watch-policy` (issue 11): saving the policy file reloads
it through the same zero-gap handover as SIGHUP - the new rule fires, and
a loop of opens on a watched file running through the edits raises exactly
one alert per open; a save with errors keeps the running policy and says
where the error is (file:line:col); a watched directory someone other than
root can write is refused, as the loader refuses such policies."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from agentproc import OpenLoop, counters, handover_policy, start_agent, wait_log

from agent.policywatch import PolicyWatch
from agent.trust import UntrustedPathError

pytestmark = pytest.mark.root


def _save(path: Path, text: str) -> None:
    """As an editor saves: a new file renamed over the old one."""
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_saving_the_policy_reloads_it_without_losing_an_open(built_objects: None, tmp_path: Path) -> None:
    watched, other = tmp_path / "watched", tmp_path / "other"
    watched.write_text("x")
    other.write_text("y")
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir(mode=0o755)
    policy = policy_dir / "watch.policy"
    policy.write_text(handover_policy(watched, other, with_chmod=False))
    log = tmp_path / "agent.log"
    agent = start_agent(policy, tmp_path, "--watch-policy", stderr=log)

    with OpenLoop(watched) as loop:
        time.sleep(0.3)
        _save(policy, handover_policy(watched, other, with_chmod=True))     # another shape: a handover
        wait_log(log, "handover to generation 2", 120)
        os.chmod(other, 0o640)
        assert agent.wait_for("other_chmod"), log.read_text()[-3000:]
        # a save with an error (a rule's own error only leaves the rule out): the running policy
        # stays, the error says where
        policy.write_text(handover_policy(watched, other, with_chmod=True) + "  - id: [broken\n")
        text = wait_log(log, "the policy has errors; still running the previous one", 30)
        assert re.search(rf"{re.escape(str(policy))}:\d+:\d+: error", text), text[-3000:]
        os.chmod(other, 0o600)
        time.sleep(0.3)
        policy.write_text(handover_policy(watched, other, with_chmod=False))   # written in place: back to the first shape
        wait_log(log, "handover to generation 3", 120)
        time.sleep(0.3)
    stderr = agent.stop()
    alerts = [a for a in agent.alerts() if a["rule_id"] == "watched_open"]
    assert counters(stderr)["open"]["lost"] == 0
    assert len(alerts) == loop.opened, f"{len(alerts)} alerts for {loop.opened} opens; unalerted {loop.unalerted(alerts)}"
    # the rule of the broken save never ran; the chmod rule only while its policy was in force
    assert [a["event"]["chmod"]["file"]["path"] for a in agent.alerts() if a["rule_id"] == "other_chmod"] \
        == [str(other)] * 2
    assert "policy change (" in stderr and "with new in-kernel filters" in stderr
    assert not [a for a in agent.alerts() if a["rule_id"] == "broken"]


def test_an_untrusted_watched_directory_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    policy = shared / "p.policy"
    policy.write_text("rules: []\n")
    with pytest.raises(UntrustedPathError, match=r"watched policy directory .*shared is writable by every user"):
        PolicyWatch([policy], lambda why: None)


def test_changes_are_debounced_and_filtered(tmp_path: Path) -> None:
    """Several writes in a burst: one reload; other files of the directory: none."""
    d = tmp_path / "p"
    d.mkdir()
    policy = d / "a.policy"
    policy.write_text("rules: []\n")
    calls: list[str] = []
    with PolicyWatch([policy], calls.append, quiet=0.2):
        (d / "unrelated.txt").write_text("x")
        for i in range(5):
            policy.write_text(f"rules: []  # {i}\n")
            time.sleep(0.02)
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    assert len(calls) == 1 and str(policy) in calls[0] and "unrelated" not in calls[0], calls

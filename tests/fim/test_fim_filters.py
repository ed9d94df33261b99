"""The policy's in-kernel filters on file-integrity events (filters.h),
observed through the kernel's counters of `rsagent run`: approvers drop
other files; rename is approved on the name the file had (its dentry has
moved by sys_exit); discarders learned from a first event drop repeats."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rules"))
from agentproc import counters, start_agent

pytestmark = pytest.mark.root


def _python(code: str) -> None:
    # one process for many calls keeps the process noise low
    subprocess.run([sys.executable, "-c", code], check=True)


def test_approvers_drop_other_files_and_rename_is_judged_by_its_old_name(tmp_path: Path,
                                                                        built_objects: None) -> None:
    watched, other = tmp_path / "watched", tmp_path / "other"
    watched.write_text("w")
    other.write_text("o")
    policy = tmp_path / "p.policy"
    policy.write_text(
        "rules:\n"
        f'  - id: chmod_watched\n    expression: chmod.file.path == "{watched}"\n'
        f'  - id: rename_watched\n    expression: rename.file.path == "{watched}"\n')
    agent = start_agent(policy, tmp_path)
    _python(f"import os\nfor _ in range(300): os.chmod({str(other)!r}, 0o640)\n"
            f"for i in range(100): os.rename({str(other)!r}, {str(other)!r} + '2'); "
            f"os.rename({str(other)!r} + '2', {str(other)!r})\n"
            f"os.chmod({str(watched)!r}, 0o600)\n"
            f"os.rename({str(watched)!r}, {str(tmp_path / 'moved')!r})\n")
    assert agent.wait_for("chmod_watched") and agent.wait_for("rename_watched")
    stats = counters(agent.stop())
    assert stats["chmod"]["dropped_approver"] >= 300
    assert stats["rename"]["dropped_approver"] >= 200
    alerts = {a["rule_id"]: a for a in agent.alerts()}
    assert set(alerts) == {"chmod_watched", "rename_watched"}
    assert alerts["rename_watched"]["event"]["rename"]["file"]["destination"]["path"] == str(tmp_path / "moved")


@pytest.mark.parametrize("bind_mount", [False, True], ids=["plain", "fs-also-bind-mounted"])
def test_discarders_drop_repeated_chmods(tmp_path: Path, built_objects: None, bind_mount: bool) -> None:
    """With a subdirectory of the same filesystem bind-mounted elsewhere (as
    `ip netns add` does with /run/netns, or a container volume), the file
    outside the bound tree is still reached through one mount only: the
    kernel knows it, so its discarder applies."""
    if bind_mount:
        (tmp_path / "bound").mkdir()
        (tmp_path / "bind").mkdir()
        subprocess.run(["mount", "--bind", str(tmp_path / "bound"), str(tmp_path / "bind")], check=True)
    try:
        _discarders_drop_repeated_chmods(tmp_path)
    finally:
        if bind_mount:
            subprocess.run(["umount", str(tmp_path / "bind")], check=True)


def _discarders_drop_repeated_chmods(tmp_path: Path) -> None:
    policy = tmp_path / "p.policy"
    # '*' in the basename, no directory prefix below '/': no approver
    # possible; discarders do the work.
    policy.write_text('rules:\n  - id: confs\n    expression: chmod.file.path =~ "/*/rsagent-test/*.conf"\n')
    f = tmp_path / "data.bin"
    f.write_text("x")
    log = tmp_path / "agent.log"
    agent = start_agent(policy, tmp_path, "--stats-interval", "0.1", stderr=log)
    _python(f"import os\nos.chmod({str(f)!r}, 0o600)\n")
    # the agent evaluates the first chmod and pushes a discarder: wait for it
    deadline = time.monotonic() + 30
    while "discarders_pushed=1" not in log.read_text():
        assert time.monotonic() < deadline, "no discarder pushed after the first chmod"
        time.sleep(0.05)
    _python(f"import os\nfor _ in range(300): os.chmod({str(f)!r}, 0o640)\n")
    stats = counters(agent.stop())["chmod"]
    assert stats["dropped_approver"] == 0
    assert stats["dropped_discarder"] >= 300

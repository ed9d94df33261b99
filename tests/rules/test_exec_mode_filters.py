"""The chmod mode-bit approver and the exec-name approver of unlink, on real
calls: what the rules can match still reaches user space, the rest stays
in the kernel (its counters say so)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from agentproc import counters, start_agent

pytestmark = pytest.mark.root

SELF_DELETING = ("unlink.retval == 0 && (unlink.file.path == process.file.path"
                 " || unlink.file.path == process.parent.file.path)")
OTHERS = 300


def _run_python(code: str) -> None:
    subprocess.run(["python3", "-c", code], check=True)


def test_a_program_deleting_its_executable_is_reported_other_unlinks_stay_in_the_kernel(
        tmp_path: Path, built_objects: None) -> None:
    policy = tmp_path / "p.policy"
    policy.write_text(f"rules:\n  - id: self_deleting\n    expression: {SELF_DELETING}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    own = bin_dir / "selfrm"                  # a copy of rm that removes itself
    shutil.copy("/usr/bin/rm", own)
    script = bin_dir / "stage1.sh"            # a script whose child (rm) removes it
    script.write_text('#!/bin/sh\nrm -f "$0"\n')
    script.chmod(0o755)
    others = tmp_path / "others"
    others.mkdir()
    for i in range(OTHERS):
        (others / f"f{i}").write_text("x")
    # a file named like the test's own program, deleted by someone else: sent
    # by the kernel (same basename as the parent's executable), no alert
    namesake = tmp_path / "namesake" / Path(os.path.realpath("/proc/self/exe")).name
    namesake.parent.mkdir()
    namesake.write_text("x")

    agent = start_agent(policy, tmp_path)
    _run_python(f"import os\nfor i in range({OTHERS}): os.unlink({str(others)!r} + f'/f{{i}}')")
    subprocess.run([str(own), str(own)], check=True)
    subprocess.run([str(script)], check=True)
    subprocess.run(["rm", str(namesake)], check=True)
    agent.wait_for("self_deleting")
    stderr = agent.stop()
    alerts = agent.alerts()
    assert not own.exists() and not script.exists() and not namesake.exists()
    got = sorted((a["event"]["unlink"]["file"]["path"], a["event"]["process"]["file"]["path"]) for a in alerts)
    assert got == sorted([(str(own), str(own)), (str(script), "/usr/bin/rm")]), got
    stats = counters(stderr)["unlink"]
    assert stats["dropped_approver"] >= OTHERS, stats     # the others never left the kernel
    assert stats["lost"] == 0


def test_chmod_setuid_is_reported_chmod_644_stays_in_the_kernel(tmp_path: Path, built_objects: None) -> None:
    policy = tmp_path / "p.policy"
    # the default policy's two chmod rules: a mode-bit test and a basename
    policy.write_text(
        "rules:\n"
        "  - id: setuid\n"
        "    expression: chmod.file.destination.mode & (S_ISUID | S_ISGID) > 0 && chmod.retval == 0\n"
        "  - id: sensitive\n"
        '    expression: chmod.file.path in ["/etc/rsagent-test-sensitive"] && chmod.retval == 0\n')
    target = tmp_path / "prog"
    shutil.copy("/usr/bin/true", target)
    agent = start_agent(policy, tmp_path)
    _run_python(f"import os\nfor _ in range({OTHERS}): os.chmod({str(target)!r}, 0o644)")
    subprocess.run(["chmod", "u+s", str(target)], check=True)
    subprocess.run(["chmod", "2755", str(target)], check=True)
    agent.wait_for("setuid")
    stderr = agent.stop()
    modes = sorted(a["event"]["chmod"]["file"]["destination"]["mode"] for a in agent.alerts()
                   if a["event"]["chmod"]["file"]["path"] == str(target))
    assert modes == [0o2755, 0o4644], [oct(m) for m in modes]
    stats = counters(stderr)["chmod"]
    assert stats["dropped_approver"] >= OTHERS, stats
    assert stats["lost"] == 0

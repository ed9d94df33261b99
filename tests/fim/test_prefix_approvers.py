"""Path-prefix approvers (filters.h rs_approve_prefix): a rule on a glob
whose basename has '*' (`/etc/**`) offers its literal directory prefix; the
kernel walks the path it would send and drops what lies outside every
prefix, or inside one with none of the flags its rules' flags conjunct
needs. Real calls, observed through the kernel's counters and the alerts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rules"))
from agentproc import counters, start_agent

pytestmark = pytest.mark.root

WRITE = "(O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)"


def _python(code: str) -> None:
    # one process for many calls keeps the process noise low
    subprocess.run([sys.executable, "-c", code], check=True)


def _policy(tmp_path: Path, *rules: tuple[str, str]) -> Path:
    policy = tmp_path / "p.policy"
    policy.write_text("rules:\n" + "".join(f"  - id: {i}\n    expression: '{e}'\n" for i, e in rules))
    return policy


def _paths(agent: object, rule_id: str, field: str = "file") -> list[str]:
    out = []
    for a in agent.alerts():  # type: ignore[attr-defined]
        if a["rule_id"] == rule_id:
            t = a["event"]["type"]
            f = a["event"][t]["file"]
            out.append(f["destination"]["path"] if field == "destination" else f["path"])
    return out


def test_write_opens_outside_the_prefix_and_reads_inside_it_stay_in_the_kernel(tmp_path: Path,
                                                                                built_objects: None) -> None:
    watched, other = tmp_path / "etc", tmp_path / "etcetera"   # a sibling sharing the name's start
    (watched / "sub").mkdir(parents=True)
    other.mkdir()
    inside, nested, outside = watched / "a.conf", watched / "sub" / "b.conf", other / "c.conf"
    for f in (inside, nested, outside):
        f.write_text("x")
    policy = _policy(tmp_path, ("written", f'open.flags & {WRITE} > 0 && open.file.path =~ "{watched}/**"'))
    agent = start_agent(policy, tmp_path)
    _python(f"import os\nfor _ in range(300): os.close(os.open({str(outside)!r}, os.O_WRONLY))\n"
            f"for _ in range(300): os.close(os.open({str(inside)!r}, os.O_RDONLY))\n"
            f"os.close(os.open({str(inside)!r}, os.O_WRONLY))\n"
            f"os.close(os.open({str(nested)!r}, os.O_RDWR | os.O_APPEND))\n")
    assert agent.wait_for("written")
    time.sleep(0.3)
    stats = counters(agent.stop())["open"]
    assert stats["dropped_approver"] >= 600, stats   # the writes to etcetera, the reads of etc
    assert stats["lost"] == 0
    assert sorted(_paths(agent, "written")) == sorted([str(inside), str(nested)])


def test_unlinks_outside_the_prefix_are_dropped_and_inside_it_sent(tmp_path: Path, built_objects: None) -> None:
    logs, other = tmp_path / "log", tmp_path / "data"
    logs.mkdir()
    other.mkdir()
    policy = _policy(tmp_path, ("log_deleted", f'unlink.file.path =~ "{logs}/**" && unlink.retval == 0'))
    agent = start_agent(policy, tmp_path)
    _python(f"import os\nfor i in range(200):\n    p = os.path.join({str(other)!r}, str(i))\n"
            f"    open(p, 'w').close(); os.unlink(p)\n"
            f"p = os.path.join({str(logs)!r}, 'x.log')\nopen(p, 'w').close(); os.unlink(p)\n")
    assert agent.wait_for("log_deleted")
    time.sleep(0.3)
    stats = counters(agent.stop())["unlink"]
    assert stats["dropped_approver"] >= 200, stats
    assert _paths(agent, "log_deleted") == [str(logs / "x.log")]


def test_rename_is_approved_by_its_destination_prefix_and_name(tmp_path: Path, built_objects: None) -> None:
    """compileall's shape: many renames in a directory no rule names; the
    rules name the destination (a directory, a name), which the kernel
    checks where the file is now."""
    cache, cron, home = tmp_path / "cache", tmp_path / "cron.d", tmp_path / "home"
    for d in (cache, cron, home):
        d.mkdir()
    policy = _policy(tmp_path, ("cron", f'rename.file.destination.path =~ "{cron}/*"'),
                     ("keys", 'rename.file.destination.name == "authorized_keys"'))
    agent = start_agent(policy, tmp_path)
    _python(f"import os\nc = {str(cache)!r}\nfor i in range(200):\n"
            f"    p = os.path.join(c, f'{{i}}.tmp'); open(p, 'w').close(); os.rename(p, p[:-4] + '.pyc')\n"
            f"open(os.path.join(c, 'job'), 'w').close()\n"
            f"os.rename(os.path.join(c, 'job'), os.path.join({str(cron)!r}, 'job'))\n"
            f"open(os.path.join(c, 'k'), 'w').close()\n"
            f"os.rename(os.path.join(c, 'k'), os.path.join({str(home)!r}, 'authorized_keys'))\n")
    assert agent.wait_for("cron") and agent.wait_for("keys")
    time.sleep(0.3)
    stats = counters(agent.stop())["rename"]
    assert stats["dropped_approver"] >= 200, stats
    assert _paths(agent, "cron", "destination") == [str(cron / "job")]
    assert _paths(agent, "keys", "destination") == [str(home / "authorized_keys")]


def test_a_file_reached_through_a_bind_mount_is_judged_by_the_path_the_record_carries(
        tmp_path: Path, built_objects: None) -> None:
    """The kernel walks the path through the mount the call went through,
    as the record does: the rule on the bind mount's path sees writes made
    there, and the same file written through its own directory is dropped."""
    src, bind = tmp_path / "src", tmp_path / "bind"
    src.mkdir()
    bind.mkdir()
    (src / "f").write_text("x")
    subprocess.run(["mount", "--bind", str(src), str(bind)], check=True)
    try:
        policy = _policy(tmp_path, ("via_bind", f'open.flags & {WRITE} > 0 && open.file.path =~ "{bind}/**"'))
        agent = start_agent(policy, tmp_path)
        _python(f"import os\nfor _ in range(200): os.close(os.open({str(src / 'f')!r}, os.O_WRONLY))\n"
                f"os.close(os.open({str(bind / 'f')!r}, os.O_WRONLY))\n")
        assert agent.wait_for("via_bind")
        time.sleep(0.3)
        stats = counters(agent.stop())["open"]
    finally:
        subprocess.run(["umount", str(bind)], check=True)
    assert stats["dropped_approver"] >= 200, stats
    assert _paths(agent, "via_bind") == [str(bind / "f")]


def test_a_failed_call_without_an_object_is_sent_unless_its_flags_decide(tmp_path: Path,
                                                                         built_objects: None) -> None:
    """No dentry: the kernel cannot walk a path, user space decides from the
    caller's string (relative here, joined with the cwd). Flags with no bit
    of any prefix's mask decide without a path: compileall's failed reads
    of the .pyc it is about to write stay in the kernel."""
    watched = tmp_path / "w"
    watched.mkdir()
    policy = _policy(tmp_path, ("denied", f'open.flags & O_CREAT > 0 && open.file.path =~ "{watched}/**" '
                                          "&& open.retval == -ENOENT"))
    agent = start_agent(policy, tmp_path)
    _python(f"import os\nos.chdir({str(watched)!r})\nfor _ in range(200):\n    try:\n"
            "        os.open('missing/y', os.O_RDONLY)\n    except FileNotFoundError:\n        pass\n"
            "try:\n    os.open('missing/x', os.O_CREAT | os.O_WRONLY)\nexcept FileNotFoundError:\n    pass\n")
    assert agent.wait_for("denied")
    time.sleep(0.3)
    stats = counters(agent.stop())["open"]
    assert stats["dropped_approver"] >= 200, stats
    assert _paths(agent, "denied") == [str(watched / "missing" / "x")]


def test_sighup_moves_the_prefixes(tmp_path: Path, built_objects: None) -> None:
    """A policy of the same shape with other prefixes: the map's values
    change in place (kfilters.reload), the old prefix drops, the new sends."""
    first, second = tmp_path / "first", tmp_path / "second"
    for d in (first, second):
        d.mkdir()
        (d / "f").write_text("x")
    policy = _policy(tmp_path, ("watched", f'open.flags & O_WRONLY > 0 && open.file.path =~ "{first}/**"'))
    agent = start_agent(policy, tmp_path)
    write = "import os, sys\nfor p in sys.argv[1:]: os.close(os.open(p, os.O_WRONLY))\n"
    subprocess.run([sys.executable, "-c", write, str(first / "f")], check=True)
    assert agent.wait_for("watched")
    policy.write_text(f"rules:\n  - id: watched_now\n    expression: 'open.flags & O_WRONLY > 0 && "
                      f'open.file.path =~ "{second}/**"\'\n')
    agent.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not agent.wait_for("watched_now", timeout=0.5):
        assert time.monotonic() < deadline, "the new prefix never approved"
        subprocess.run([sys.executable, "-c", write, str(second / "f")], check=True)
    subprocess.run([sys.executable, "-c", write] + [str(first / "f")] * 100, check=True)
    time.sleep(0.3)
    stderr = agent.stop()
    assert "with new in-kernel filters" not in stderr   # same shape: values only
    assert counters(stderr)["open"]["dropped_approver"] >= 100
    assert set(_paths(agent, "watched")) == {str(first / "f")}
    assert set(_paths(agent, "watched_now")) == {str(second / "f")}
    assert os.path.exists(first / "f")

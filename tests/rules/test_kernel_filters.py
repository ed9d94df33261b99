"""In-kernel filters observed through the kernel's own counters: approvers
drop what no rule can match; discarders learned at run time drop repeats."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

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
    # A '*' in the basename and no directory prefix below '/': no approver
    # possible, so discarders do the work.
    policy.write_text('rules:\n  - id: confs\n    expression: open.file.path =~ "/*/rsagent-test/*.conf"\n')
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


def _discarder_stat(stderr: str, name: str) -> int:
    """A DiscarderStats counter from the agent's exit log (other processes'
    opens teach it discarders too, so tests compare with lower bounds)."""
    line = [x for x in stderr.splitlines() if "discarders: DiscarderStats(" in x][-1]
    return int(line.split(f"{name}=", 1)[1].split(",", 1)[0].rstrip(")"))


def _policy(tmp_path: Path, expression: str) -> Path:
    policy = tmp_path / "p.policy"
    policy.write_text(f"rules:\n  - id: watched\n    expression: {expression}\n")
    return policy


def test_parent_directory_discarder_covers_the_whole_directory(tmp_path: Path, built_objects: None) -> None:
    far = tmp_path / "unrelated" / "sub"
    far.mkdir(parents=True)
    for name in ("a.bin", "b.bin"):
        (far / name).write_text("x")
    agent = start_agent(_policy(tmp_path, 'open.file.path =~ "/*/rsagent-test/*.conf"'), tmp_path)
    _open_many(far / "a.bin", 1)
    time.sleep(0.5)
    _open_many(far / "b.bin", 200)   # never opened before: covered by a parent's discarder
    stderr = agent.stop()
    assert _discarder_stat(stderr, "pushed_parent") >= 1, stderr
    assert counters(stderr)["open"]["dropped_discarder"] >= 200


def test_renaming_a_discarded_file_into_a_watched_name_is_caught(tmp_path: Path, built_objects: None) -> None:
    watched = tmp_path / "d"
    watched.mkdir()
    txt, conf = watched / "f.txt", watched / "f.conf"
    other, alias = watched / "g.txt", watched / "g.conf"
    txt.write_text("x")
    other.write_text("y")
    # The directory holds watched names, so only the leaf inodes can be discarded.
    agent = start_agent(_policy(tmp_path, f'open.file.path =~ "{watched}/*.conf"'), tmp_path)
    _open_many(txt, 1)
    _open_many(other, 1)
    time.sleep(0.5)
    _open_many(txt, 50)
    _open_many(other, 50)
    os.rename(txt, conf)          # same inode, now a watched name
    os.link(other, alias)         # same inode, a second, watched name
    _open_many(conf, 1)
    _open_many(alias, 1)
    assert agent.wait_for("watched")
    time.sleep(0.5)
    stderr = agent.stop()
    assert counters(stderr)["open"]["dropped_discarder"] >= 100, stderr
    assert _discarder_stat(stderr, "pushed_leaf") >= 2, stderr
    paths = sorted(a["event"]["open"]["file"]["path"] for a in agent.alerts())
    assert paths == sorted([str(alias), str(conf)]), stderr


def test_without_compiled_objects_or_clang_the_error_says_to_run_rulec_compile(tmp_path: Path) -> None:
    import sys

    policy = _policy(tmp_path, 'open.file.path == "/etc/shadow"')
    env = {"PATH": "/usr/bin:/bin", "RSAGENT_POLICY_CACHE": str(tmp_path / "empty-cache")}
    bindir = tmp_path / "bin"           # python and nothing else: no clang on PATH
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    env["PATH"] = str(bindir)
    rsagent = str(Path(sys.executable).parent / "rsagent")
    proc = subprocess.run([rsagent, "run", "--policy", str(policy)], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert "rulec compile" in proc.stderr and "--compiled" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([rsagent, "run", "--policy", str(policy), "--compiled", str(tmp_path / "nowhere")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "no manifest; compile the policy with `rulec compile" in proc.stderr


def test_objects_compiled_by_rulec_compile_are_used_with_compiled(tmp_path: Path, built_objects: None) -> None:
    import sys

    policy = _policy(tmp_path, 'open.file.path == "/etc/shadow"')
    out = tmp_path / "compiled"
    rulec = str(Path(sys.executable).parent / "rulec")
    subprocess.run([rulec, "compile", str(policy), "-o", str(out)], check=True, capture_output=True)
    agent = start_agent(policy, tmp_path, "--compiled", str(out))
    subprocess.run(["cat", "/etc/shadow"], check=True, capture_output=True)
    assert agent.wait_for("watched")
    agent.stop()
    # A policy of another shape is refused with the reason.
    other = tmp_path / "other.policy"
    other.write_text('rules:\n  - id: g\n    expression: open.file.path =~ "/etc/*/x*"\n')
    proc = subprocess.run([str(Path(sys.executable).parent / "rsagent"), "run", "--policy", str(other),
                           "--compiled", str(out)], capture_output=True, text=True)
    assert proc.returncode == 1 and "kernel filters differ" in proc.stderr


def test_sighup_reloads_a_policy_of_the_same_shape(tmp_path: Path, built_objects: None) -> None:
    import signal

    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    for f in (first, second):
        f.write_text("x")
    policy = _policy(tmp_path, f'open.file.path == "{first}"')
    agent = start_agent(policy, tmp_path)
    _open_many(second, 1)
    _open_many(first, 1)
    assert agent.wait_for("watched")
    policy.write_text(f"rules:\n  - id: watched_now\n    expression: open.file.path == \"{second}\"\n")
    agent.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the reload happens between two polls
        _open_many(second, 1)
        if agent.wait_for("watched_now", timeout=0.5):
            break
    _open_many(first, 1)          # no longer watched: dropped in the kernel now
    time.sleep(0.5)
    # A policy needing other kernel checks: new objects take over (test_reload_handover.py).
    conf = tmp_path / "a.conf"
    conf.write_text("x")
    policy.write_text(f'rules:\n  - id: g\n    expression: open.file.path =~ "{tmp_path}/*.conf"\n')
    agent.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while not agent.wait_for("g", timeout=0.5):   # compiled on a thread, then handed over
        assert time.monotonic() < deadline, "the new shape never took over"
        _open_many(conf, 1)
    _open_many(second, 1)         # no longer watched by the new objects
    time.sleep(0.5)
    stderr = agent.stop()
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for a in agent.alerts():
        by_rule.setdefault(a["rule_id"], []).append(a["event"]["open"]["file"]["path"])
    assert by_rule["watched"] == [str(first)], by_rule
    assert set(by_rule["watched_now"]) == {str(second)}
    assert set(by_rule["g"]) == {str(conf)}
    stamps = {r: [a["timestamp"] for a in agent.alerts() if a["rule_id"] == r] for r in ("watched_now", "g")}
    assert max(stamps["watched_now"]) < min(stamps["g"])     # the last open of second: no rule any more
    assert "SIGHUP: reloaded 1 rule(s)" in stderr
    assert "with new in-kernel filters" in stderr and "handover to generation 2" in stderr


def test_a_mid_path_globstar_rule_approves_by_basename_and_sends_nested_opens(tmp_path: Path,
                                                                               built_objects: None) -> None:
    root = tmp_path / "x"
    nested, direct = root / "a" / "b" / "token", root / "token"
    other, outside = root / "a" / "other.txt", tmp_path / "y" / "token"
    for f in (nested, direct, other, outside):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
    agent = start_agent(_policy(tmp_path, f'open.file.path =~ "{root}/**/token"'), tmp_path)
    _open_many(other, 300)          # basename 'other.txt' is no approver: dropped in the kernel
    _open_many(outside, 1)          # basename 'token': sent, but outside the glob
    _open_many(nested, 1)           # two segments for '**'
    _open_many(direct, 1)           # zero segments
    assert agent.wait_for("watched")
    time.sleep(0.5)
    stderr = agent.stop()
    assert counters(stderr)["open"]["dropped_approver"] >= 300, stderr
    paths = sorted(a["event"]["open"]["file"]["path"] for a in agent.alerts())
    assert paths == sorted([str(direct), str(nested)]), stderr


def test_a_negated_mid_path_globstar_teaches_no_parent_discarder_for_directories_it_spans(
        tmp_path: Path, built_objects: None) -> None:
    root = tmp_path / "x"
    sub = root / "a"
    sub.mkdir(parents=True)
    miss, hit = sub / "token", sub / "hit.bin"
    for f in (miss, hit):
        f.write_text("x")
    # every file below x but its tokens; no approvers ('**' basename, a negation): discarders filter
    agent = start_agent(_policy(tmp_path, f'open.file.path =~ "{root}/**" && open.file.path !~ "{root}/**/token"'),
                        tmp_path)
    _open_many(miss, 1)             # matches nothing: a leaf discarder; {sub} must not become one
    time.sleep(0.5)
    _open_many(miss, 50)
    _open_many(hit, 1)              # the rule matches it: the kernel must send it
    assert agent.wait_for("watched"), "the open of hit.bin was dropped in the kernel"
    stderr = agent.stop()
    assert counters(stderr)["open"]["dropped_discarder"] >= 50, stderr
    assert [a["event"]["open"]["file"]["path"] for a in agent.alerts()] == [str(hit)], stderr

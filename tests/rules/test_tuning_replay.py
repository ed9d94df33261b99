"""Record & replay against the live agent (issue #15): a capture made while
`rsagent run` raises alerts on a real workload replays to exactly those
alerts; a changed policy replayed against a full capture (`rsagent record`)
gives the alerts a live run of the changed policy raises on the same
workload, and the diff with the baseline is the difference of the live runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from agentproc import RSAGENT, start_agent

pytestmark = pytest.mark.root

RULEC = str(Path(sys.executable).parent / "rulec")

WORKLOAD = r'''
import os, subprocess, sys
d = sys.argv[1]
def touch(p):
    os.close(os.open(p, os.O_RDONLY | os.O_CREAT, 0o644))
touch(f"{d}/etc/app.conf")
touch(f"{d}/etc/other.txt")
touch(f"{d}/keys/secret.key")
for i in range(20):
    touch(f"{d}/logs/l{i}")
touch(f"{d}/data/a")
touch(f"{d}/flag")
touch(f"{d}/data/b")
subprocess.run([f"{d}/bin/mytool"], check=True)
touch(f"{d}/done")
'''


def _policies(d: Path) -> tuple[Path, Path]:
    base = f'''rules:
  - id: conf
    expression: open.file.path =~ "{d}/etc/*.conf"
  - id: secret
    expression: open.file.path == "{d}/keys/secret.key"
  - id: logs
    expression: open.file.path =~ "{d}/logs/*"
    every: 1m
  - id: flag
    expression: open.file.path == "{d}/flag"
    actions:
      - set: {{name: flagged, value: true}}
  - id: data_after_flag
    expression: open.file.path =~ "{d}/data/*" && ${{flagged}} == true
  - id: tool
    expression: exec.file.path == "{d}/bin/mytool"
  - id: done
    expression: open.file.path == "{d}/done"
'''
    changed = base.replace(f'"{d}/etc/*.conf"', f'"{d}/etc/*"')            # fires more
    changed = changed.replace(f'''  - id: secret
    expression: open.file.path == "{d}/keys/secret.key"
''', "")                                                                      # vanishes
    changed += f'''  - id: all_data
    expression: open.file.path =~ "{d}/data/*"
'''                                                                           # new
    p0, p1 = d.parent / "p0.policy", d.parent / "p1.policy"
    p0.write_text(base)
    p1.write_text(changed)
    return p0, p1


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "w"
    for sub in ("etc", "keys", "logs", "data", "bin"):
        (d / sub).mkdir(parents=True)
    shutil.copy("/bin/true", d / "bin" / "mytool")
    (tmp_path / "workload.py").write_text(WORKLOAD)
    return d


def _workload(d: Path) -> None:
    for p in d.rglob("*"):
        if p.is_file() and p.parent.name != "bin":
            p.unlink()
    subprocess.run([sys.executable, str(d.parent / "workload.py"), str(d)], check=True)


def _live(policy: Path, d: Path, run_dir: Path, *extra: str) -> list[dict[str, Any]]:
    run_dir.mkdir()
    agent = start_agent(policy, run_dir, *extra)
    _workload(d)
    assert agent.wait_for("done", 20), "the live agent did not see the workload's end"
    time.sleep(0.3)
    agent.stop()
    return [a for a in agent.alerts() if a["rule_id"] != "rsagent_events_lost"]


def _replay(capture: Path, policy: Path, *extra: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    alerts = capture.parent / f"replayed-{policy.stem}.jsonl"
    out = subprocess.run([RULEC, "replay", str(capture), "--policy", str(policy), "--format", "json",
                          "--alerts", str(alerts), *extra], check=True, capture_output=True, text=True)
    return json.loads(out.stdout), [json.loads(x) for x in alerts.read_text().splitlines()]


def _ours(alerts: list[dict[str, Any]], d: Path) -> Counter[tuple[str, str]]:
    """(rule, path) of the alerts the workload caused (events of d)."""
    out: Counter[tuple[str, str]] = Counter()
    for a in alerts:
        ev = a["event"]
        path = ev[ev["type"]]["file"]["path"] if ev["type"] != "exec" else ev["process"]["file"]["path"]
        if path.startswith(str(d) + "/"):
            out[(a["rule_id"], path[len(str(d)):])] += 1
    return out


def test_replay_of_a_run_capture_is_exactly_the_live_alerts(workdir: Path, built_objects: None) -> None:
    p0, _ = _policies(workdir)
    capture = workdir.parent / "run.capture"
    live = _live(p0, workdir, workdir.parent / "live0", "--record", str(capture))
    st = capture.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    report, replayed = _replay(capture, p0)
    assert replayed == live                      # every alert, in order, documents and all
    ours = _ours(live, workdir)
    assert ours == Counter({("conf", "/etc/app.conf"): 1, ("secret", "/keys/secret.key"): 1,
                            ("logs", "/logs/l0"): 1, ("flag", "/flag"): 1, ("data_after_flag", "/data/b"): 1,
                            ("tool", "/bin/mytool"): 1, ("done", "/done"): 1})
    rules = report["policy"]["rules"]
    assert rules["logs"]["throttled"] >= 19      # `every` as live
    header = report["capture"]
    assert header["command"] == "run" and header["complete"]
    assert header["filters"]["policy"] == [str(p0)] and header["filters"]["discarders"]
    assert header["kernel"]["open"]["sent"] > 0 and header["kernel"]["exec"]["sent"] > 0


def test_changed_policy_replay_matches_a_live_run_and_the_diff(workdir: Path, built_objects: None) -> None:
    p0, p1 = _policies(workdir)
    capture = workdir.parent / "all.capture"
    ready = workdir.parent / "record.ready"
    rec = subprocess.Popen([RSAGENT, "record", "-v", "-o", str(capture), "--ready-file", str(ready)],
                           stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(rec, ready)
        _workload(workdir)
        time.sleep(1.5)
    finally:
        rec.send_signal(signal.SIGINT)
        _, err = rec.communicate(timeout=60)
    assert rec.returncode == 0, err
    report, replayed = _replay(capture, p1, "--baseline", str(p0))
    live0 = _live(p0, workdir, workdir.parent / "live0")
    live1 = _live(p1, workdir, workdir.parent / "live1")
    assert _ours(replayed, workdir) == _ours(live1, workdir)
    assert _ours(live1, workdir)[("all_data", "/data/a")] == 1
    assert _ours(live1, workdir)[("conf", "/etc/other.txt")] == 1
    # the diff is the difference of the two live runs, per rule
    l0 = Counter(r for r, _ in _ours(live0, workdir).elements())
    l1 = Counter(r for r, _ in _ours(live1, workdir).elements())
    diff = report["diff"]
    for rule in set(l0) | set(l1):
        assert diff["rules"][rule]["change"] == l1[rule] - l0[rule], rule
    assert diff["rules"]["secret"]["only_in"] == "baseline"
    assert diff["rules"]["all_data"]["only_in"] == "policy"
    assert diff["new"]["by_rule"]["conf"] == 1
    assert diff["new"]["examples"]["conf"][0]["document"]["open"]["file"]["path"] == f"{workdir}/etc/other.txt"
    assert diff["vanished"]["by_rule"]["secret"] == 1
    assert report["capture"]["filters"] is None and report["capture"]["command"] == "record"


def _wait_ready(proc: subprocess.Popen[str], ready: Path) -> None:
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "rsagent record did not start"
        time.sleep(0.1)


def test_record_stops_at_max_size(tmp_path: Path, built_objects: None) -> None:
    capture = tmp_path / "small.capture"
    target = tmp_path / "f"
    target.write_text("x")
    ready = tmp_path / "record.ready"
    rec = subprocess.Popen([RSAGENT, "record", "-o", str(capture), "--max-size", "64k", "--duration", "60s",
                            "--ready-file", str(ready)], stderr=subprocess.PIPE, text=True)
    _wait_ready(rec, ready)
    # distinct paths: compress badly enough to fill 64k quickly
    for i in range(20000):
        if rec.poll() is not None:
            break
        os.close(os.open(f"{tmp_path}/{os.urandom(8).hex()}-{i}", os.O_RDONLY | os.O_CREAT, 0o600))
    _, err = rec.communicate(timeout=60)
    assert rec.returncode == 0, err
    assert "reached --max-size" in err
    assert capture.stat().st_size <= 64 << 10
    out = subprocess.run([RULEC, "replay", str(capture), "--policy", str(_one_rule(tmp_path)), "--format", "json"],
                         check=True, capture_output=True, text=True)
    report = json.loads(out.stdout)
    assert report["capture"]["size_limit_reached"] and report["capture"]["complete"]
    assert report["capture"]["not_recorded"] > 0 and report["events"] > 0


def _one_rule(d: Path) -> Path:
    p = d / "one.policy"
    p.write_text('rules:\n  - id: one\n    expression: open.file.path == "/nonexistent"\n')
    return p


def test_record_refuses_a_symlink(tmp_path: Path, built_objects: None) -> None:
    (tmp_path / "target").write_text("keep")
    (tmp_path / "link.capture").symlink_to(tmp_path / "target")
    out = subprocess.run([RSAGENT, "record", "-o", str(tmp_path / "link.capture"), "--duration", "1s"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "symlink" in out.stderr
    assert (tmp_path / "target").read_text() == "keep"

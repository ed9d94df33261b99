"""`rulec explain` checked against the kernel: events from a full capture
(`rsagent record`, no filters) are explained against a policy, and what the
explanation says the in-kernel filters do is what a live `rsagent run
--record` of the same workload let through: an approver miss is absent
from its capture, a discarder the first event teaches drops the repeat, a
field mismatch and a match are sent."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from agentproc import RSAGENT, start_agent

pytestmark = pytest.mark.root

RULEC = str(Path(sys.executable).parent / "rulec")

WORKLOAD = r'''
import os, sys, time
d = sys.argv[1]
def touch(p):
    os.close(os.open(p, os.O_RDONLY | os.O_CREAT, 0o644))
touch(f"{d}/keys/secret.key")     # match
touch(f"{d}/etc/unrelated.txt")   # approver miss
touch(f"{d}/keys/w.key")          # field mismatch (process.comm), approved
touch(f"{d}/other/secret.key")    # approved, matches nothing, teaches a discarder on other/
time.sleep(1.0)                   # the agent pushes it
touch(f"{d}/other/secret.key")    # dropped by that discarder
touch(f"{d}/done")
'''


def _policy(d: Path) -> Path:
    p = d.parent / "explain.policy"
    p.write_text(f'''rules:
  - id: key
    expression: open.file.path == "{d}/keys/secret.key"
  - id: wkey
    expression: open.file.path == "{d}/keys/w.key" && process.comm == "nosuchcomm"
  - id: done
    expression: open.file.path == "{d}/done"
''')
    return p


def _workload(d: Path) -> None:
    for p in d.rglob("*"):
        if p.is_file():
            p.unlink()
    subprocess.run([sys.executable, str(d.parent / "workload.py"), str(d)], check=True)


def _opens(capture: Path, d: Path) -> list[dict[str, Any]]:
    docs = []
    for line in gzip.open(capture).read().splitlines()[1:]:
        item = json.loads(line)
        if item["k"] == "e" and item["d"]["type"] == "open" and item["d"]["open"]["file"]["path"].startswith(f"{d}/"):
            docs.append(item["d"])
    return docs


def _explain(policy: Path, doc: dict[str, Any], tmp: Path) -> dict[str, Any]:
    ev = tmp / "event.json"
    ev.write_text(json.dumps(doc))
    out = subprocess.run([RULEC, "explain", "--policy", str(policy), "--event", str(ev), "--format", "json"],
                         check=True, capture_output=True, text=True)
    text = subprocess.run([RULEC, "explain", "--policy", str(policy), "--event", str(ev)],
                          check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.stdout)
    result["text"] = text
    return result


def test_explain_agrees_with_the_kernel(tmp_path: Path, built_objects: None) -> None:
    d = tmp_path / "w"
    for sub in ("keys", "etc", "other"):
        (d / sub).mkdir(parents=True)
    (tmp_path / "workload.py").write_text(WORKLOAD)
    policy = _policy(d)

    full = tmp_path / "full.capture"
    ready = tmp_path / "record.ready"
    rec = subprocess.Popen([RSAGENT, "record", "-o", str(full), "--ready-file", str(ready)],
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert rec.poll() is None and time.monotonic() < deadline, "rsagent record did not start"
            time.sleep(0.1)
        _workload(d)
        time.sleep(1.0)
    finally:
        rec.send_signal(signal.SIGINT)
        _, err = rec.communicate(timeout=60)
    assert rec.returncode == 0, err

    filtered = tmp_path / "filtered.capture"
    log = tmp_path / "agent.log"
    agent = start_agent(policy, tmp_path, "--record", str(filtered), "-vv", "--explain-rule", "wkey", stderr=log)
    _workload(d)
    assert agent.wait_for("done", 20)
    time.sleep(0.3)
    agent.stop()
    # --explain-rule at -vv: the live agent logs the same first failing clause
    assert f'explain open {d}/keys/w.key by python' in log.read_text()
    assert 'wkey: no match, first failing clause (process.comm == "nosuchcomm") (process.comm=' in log.read_text()

    seen = [x["open"]["file"]["path"][len(str(d)):] for x in _opens(filtered, d)]
    by_path: dict[str, dict[str, Any]] = {}
    for doc in _opens(full, d):
        by_path.setdefault(doc["open"]["file"]["path"][len(str(d)):], doc)
    assert [p for p in ("/keys/secret.key", "/etc/unrelated.txt", "/keys/w.key", "/other/secret.key", "/done")
            if p not in by_path] == []

    match = _explain(policy, by_path["/keys/secret.key"], tmp_path)
    assert [(r["rule_id"], r["matched"]) for r in match["rules"]] == [("key", True), ("wkey", False), ("done", False)]
    assert match["kernel"]["sent"] and "approved: basename 'secret.key'" in match["kernel"]["approvers"]
    assert "matched a rule" in match["kernel"]["discarder"]
    assert "rule key: matches" in match["text"]
    assert "/keys/secret.key" in seen

    miss = _explain(policy, by_path["/etc/unrelated.txt"], tmp_path)
    assert not miss["kernel"]["sent"] and "approver miss" in miss["kernel"]["approvers"]
    assert "'unrelated.txt'" in miss["kernel"]["approvers"]
    assert miss["rules"][0]["failed"]["values"] == {"open.file.path": f"{d}/etc/unrelated.txt"}
    assert "/etc/unrelated.txt" not in seen                  # the kernel dropped it too

    mismatch = _explain(policy, by_path["/keys/w.key"], tmp_path)
    wkey = next(r for r in mismatch["rules"] if r["rule_id"] == "wkey")
    assert not wkey["matched"]
    assert wkey["failed"]["text"] == '(process.comm == "nosuchcomm")'
    assert wkey["failed"]["values"] == {"process.comm": by_path["/keys/w.key"]["process"]["comm"]}
    assert mismatch["kernel"]["sent"] and "no discarder is proven" in mismatch["kernel"]["discarder"]
    assert "first failing clause: (process.comm == \"nosuchcomm\")" in mismatch["text"]
    assert "/keys/w.key" in seen

    teach = _explain(policy, by_path["/other/secret.key"], tmp_path)
    assert teach["kernel"]["sent"] and not any(r["matched"] for r in teach["rules"])
    assert [(t["path"], t["is_leaf"]) for t in teach["kernel"]["teaches"]] == [(f"{d}/other", False)]
    assert "teaches a discarder on directory" in teach["kernel"]["discarder"]
    assert seen.count("/other/secret.key") == 1              # the repeat was dropped by that discarder

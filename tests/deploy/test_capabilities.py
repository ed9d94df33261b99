"""The systemd unit's CapabilityBoundingSet is enough to run the agent and
no smaller set than it is: the agent runs with exactly those capabilities
(setpriv, as systemd would bound it) and fails without CAP_BPF/CAP_SYS_ADMIN."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sinkutil import RSAGENT, RULE, read_jsonl, trigger, wait_until
from test_manifests import unit_capabilities

pytestmark = pytest.mark.root


def bounded(caps: list[str]) -> list[str]:
    names = ",".join("+" + c.lower().removeprefix("cap_") for c in caps)
    return ["setpriv", "--inh-caps=-all", f"--bounding-set=-all,{names}"]


def test_the_units_capabilities_run_the_agent(built_objects: None, tmp_path: Path) -> None:
    caps = unit_capabilities()
    probe = subprocess.run([*bounded(caps), RSAGENT, "probe"], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and "hook set      tracepoint" in probe.stdout, probe.stdout + probe.stderr
    watched = tmp_path / "watched"
    watched.touch()
    policy = tmp_path / "p.policy"
    policy.write_text(f'version: 1.0.0\nrules:\n  - id: {RULE}\n    expression: open.file.path == "{watched}"\n')
    ready, alerts = tmp_path / "ready", tmp_path / "alerts.jsonl"
    proc = subprocess.Popen([*bounded(caps), RSAGENT, "run", "--policy", str(policy), "--ready-file", str(ready),
                             "--output", f"jsonl:{alerts}", "--spool-dir", str(tmp_path / "spool")],
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: ready.exists() or proc.poll() is not None, 60, "the agent did not start")
        assert proc.poll() is None
        trigger(watched, 3)
        wait_until(lambda: len(read_jsonl(alerts)) >= 3, 10, "no alert with the unit's capabilities")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    without = [c for c in caps if c not in ("CAP_BPF", "CAP_SYS_ADMIN")]
    probe = subprocess.run([*bounded(without), RSAGENT, "probe"], capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "hook set      none" in probe.stdout

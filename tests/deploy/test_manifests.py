"""The deployment files hold together: the DaemonSet (structure, mounts,
privileges, arguments the real `rsagent` parser accepts, sinks that parse),
the systemd unit (`systemd-analyze verify`), and the image's version."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from agent.build import ROOT
from agent.cli import _parser
from agent.sinks.spec import SinkSpec

DAEMONSET = ROOT / "deploy" / "kubernetes" / "rsagent.yaml"
UNIT = ROOT / "deploy" / "systemd" / "rsagent.service"


def _docs() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(DAEMONSET.read_text())}


def test_daemonset_structure() -> None:
    docs = _docs()
    assert set(docs) == {"Namespace", "ServiceAccount", "DaemonSet"}
    ds = docs["DaemonSet"]
    assert ds["apiVersion"] == "apps/v1"
    assert ds["metadata"]["namespace"] == docs["Namespace"]["metadata"]["name"]
    spec = ds["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items())
    assert pod["hostPID"] is True
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    (c,) = pod["containers"]
    assert c["securityContext"]["privileged"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert set(mounts.values()) <= set(volumes)
    for path in ("/sys/kernel/tracing", "/sys/fs/bpf"):
        assert volumes[mounts[path]]["hostPath"]["path"] == path
    assert volumes[mounts["/var/lib/rsagent"]]["hostPath"]["type"] == "DirectoryOrCreate"


def test_daemonset_arguments_are_what_rsagent_accepts() -> None:
    (c,) = _docs()["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    args = _parser().parse_args(c["args"])
    assert args.command == "run"
    for out in args.output:
        spec = SinkSpec.parse(out)
        assert spec.target == "-" or spec.target.startswith("jsonl:/var/log/rsagent/")
    port = int(args.metrics.rsplit(":", 1)[1])
    assert {"containerPort": port, "name": "metrics", "protocol": "TCP"} in c["ports"]
    assert c["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert str(args.ready_file) in " ".join(c["readinessProbe"]["exec"]["command"])
    mounted = [m["mountPath"] for m in c["volumeMounts"]]
    for path in (args.spool_dir, args.ready_file.parent, *(Path(o[len("jsonl:"):]).parent
                                                          for o in args.output if o.startswith("jsonl:"))):
        assert any(str(path).startswith(m) for m in mounted), f"{path} is not on a volume (read-only root)"


def test_image_versions_agree() -> None:
    (c,) = _docs()["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    assert c["image"].endswith(f"/rsagent:{version.group(1)}")


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    rsagent = shutil.which("rsagent") or str(Path(__import__("sys").executable).parent / "rsagent")
    unit = tmp_path / "rsagent.service"
    # verify checks that ExecStart's binary exists: point it at this checkout's.
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/rsagent", rsagent))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    text = UNIT.read_text()
    for line in ("Restart=on-failure", "ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=rsagent"):
        assert line in text.splitlines()
    exec_start = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    default_opts = next(x for x in text.splitlines() if x.startswith("Environment=RSAGENT_OPTS="))
    argv = exec_start.split()[1:-1] + default_opts.split("=", 2)[2].strip('"').split()
    args = _parser().parse_args(argv)
    assert args.command == "run" and str(args.spool_dir).startswith("/var/lib/rsagent")


def unit_capabilities() -> list[str]:
    line = next(x for x in UNIT.read_text().splitlines() if x.startswith("CapabilityBoundingSet="))
    return line.split("=", 1)[1].split()

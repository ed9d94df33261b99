"""Activity profiles end to end on the real kernel: a small web service
(webapp.py, run by its own copy of the Python interpreter so that `--exe`
names it alone) is learned live with `rsagent profile learn --exe`, then
watched by `rsagent run` with a policy referencing the profile. Normal
traffic raises no anomaly; each exploit-like action raises an anomaly
naming what was new. The service runs in the lab's client namespace, where
its DNS queries go to the test's dnsmasq.

Two agent starts (learning, then detecting: the product's two steps), one
server for both."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from net.lab import Lab, dns_lab

from agent.profile.model import read_profile

pytestmark = pytest.mark.root

BIN = Path(sys.executable).parent
WEBAPP_PY = Path(__file__).resolve().parent / "webapp.py"
NORMAL = ("/", "/lookup", "/", "/lookup")


@dataclass
class Service:
    lab: Lab
    exe: Path
    dir: Path
    proc: subprocess.Popen[str]
    port: int

    def get(self, path: str) -> str:
        code = ("import sys, urllib.request; "
                f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{self.port}{path}', timeout=20).read()"
                ".decode())")
        out = subprocess.run(self.lab.exec_in(self.lab.client_ns, sys.executable, "-c", code),
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout


def _start(cmd: list[str], ready: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{' '.join(cmd[:3])} exited {proc.returncode}: {proc.communicate()[1]}")
        assert time.monotonic() < deadline, f"{' '.join(cmd[:3])} not ready within 120 s"
        time.sleep(0.05)
    return proc


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


@pytest.fixture(scope="module")
def lab(built_objects: None) -> Iterator[Lab]:
    with dns_lab() as lab:
        yield lab


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("profile-live")
    os.chmod(d, 0o700)
    return d


@pytest.fixture(scope="module")
def learned(lab: Lab, workdir: Path) -> Iterator[tuple[Service, Path, str]]:
    """The service, started while `rsagent profile learn` watches, its normal traffic, the profile."""
    exe = workdir / "bin" / "webapp"
    exe.parent.mkdir()
    shutil.copy2(os.path.realpath(sys.executable), exe)
    (workdir / "log").mkdir()
    conf = workdir / "webapp.json"
    conf.write_text(json.dumps({
        "greeting": "hello", "name": "api.shop.example", "peer": [lab.server_ip, 5432],
        "access_log": str(workdir / "log" / "access.log"), "drop_dir": str(workdir / "dropped"),
        "evil_name": "exfil.evil.example", "evil_peer": [lab.server_ip, 4444]}))
    profile = workdir / "webapp.profile"
    learner = _start([str(BIN / "rsagent"), "profile", "learn", "--exe", str(exe), "--duration", "10m",
                      "--netns", lab.client_ns, "--ready-file", str(workdir / "learn.ready"), "-o", str(profile)],
                     workdir / "learn.ready")
    server = None
    try:
        server = subprocess.Popen(lab.exec_in(lab.client_ns, str(exe), str(WEBAPP_PY), "--config", str(conf)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("ready "), server.communicate(timeout=10)
        service = Service(lab, exe, workdir, server, int(line.split()[1]))
        for path in NORMAL:
            assert service.get(path) == f"hello {path}\n"
        time.sleep(1.0)   # the last events through the ring buffer
        err = _stop(learner)
        yield service, profile, err
    finally:
        if learner.poll() is None:
            learner.kill()
            learner.wait(30)
        if server is not None:
            server.terminate()
            server.wait(30)


@pytest.fixture(scope="module")
def detecting(learned: tuple[Service, Path, str], workdir: Path) -> Iterator[tuple[Service, Path]]:
    """`rsagent run` with a policy referencing the profile; normal traffic first."""
    service, profile, _ = learned
    policy = workdir / "webapp.policy"
    policy.write_text(f"version: 1.0.0\nprofiles:\n  - id: webapp\n    path: {profile.name}\n"
                      "    tags: {severity: high}\n")
    alerts = workdir / "alerts.jsonl"
    agent = _start([str(BIN / "rsagent"), "run", "--policy", str(policy), "--netns", service.lab.client_ns,
                    "--output", f"jsonl:{alerts}", "--ready-file", str(workdir / "run.ready")],
                   workdir / "run.ready")
    try:
        for path in NORMAL:
            service.get(path)
        yield service, alerts
    finally:
        _stop(agent)


def _alerts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _wait(path: Path, pred: Any, timeout: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [a for a in _alerts(path) if pred(a)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_learned_profile_holds_the_service(learned: tuple[Service, Path, str]) -> None:
    service, path, err = learned
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    profile = read_profile(path)
    assert profile is not None and profile.selector.value == str(service.exe)
    me = profile.process(str(service.exe))
    assert me is not None and me.args == [f"{WEBAPP_PY} --config {service.dir / 'webapp.json'}"]
    covered = [p for p in profile.files_read if p in (str(service.dir / "webapp.json"), str(service.dir) + "/*")]
    assert covered, profile.files_read
    assert str(service.dir / "log" / "access.log") in profile.files_write
    assert "api.shop.example" in profile.dns
    assert any(d.addr == service.lab.server_ip and d.port == 5432 for d in profile.connect)
    assert {"open", "dns", "connect"} <= set(profile.event_types)
    assert f"events were the workload's (exe {service.exe})" in err


def test_normal_traffic_raises_no_anomaly(detecting: tuple[Service, Path]) -> None:
    service, alerts = detecting
    time.sleep(1.5)
    assert [a["anomaly"] for a in _alerts(alerts)] == []


@pytest.mark.parametrize("action, kind, new", [
    ("/dns", "new_dns", lambda s: "exfil.evil.example"),
    ("/connect", "new_connect", lambda s: f"{s.lab.server_ip}:4444"),
    ("/write", "new_file", lambda s: f"write {s.dir / 'dropped' / 'payload'}"),
    ("/shell", "new_executable", lambda s: os.path.realpath("/bin/sh")),
])
def test_exploit_like_action_raises_an_anomaly_naming_it(detecting: tuple[Service, Path], action: str,
                                                         kind: str, new: Any) -> None:
    service, alerts = detecting
    before = len(_alerts(alerts))
    assert service.get(action) == f"hello {action}\n"
    item = new(service)
    found = _wait(alerts, lambda a: a.get("anomaly", {}).get("new") == item)
    assert found, [a.get("anomaly") for a in _alerts(alerts)[before:]]
    a = found[0]
    assert a["rule_id"] == f"webapp_{kind}" and a["anomaly"]["kind"] == kind
    assert a["anomaly"]["profile"].endswith("webapp.profile") and a["rule_tags"]["severity"] == "high"
    if kind != "new_executable":   # the server itself did it: exactly one anomaly of that kind
        time.sleep(0.5)
        same = [x for x in _alerts(alerts)[before:] if x["anomaly"]["kind"] == kind]
        assert len(same) == 1, same

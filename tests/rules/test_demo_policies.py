"""The seed's demo policies, exactly, end to end: a real /usr/local/bin/webapp
(built here), a real overlayfs mount, `rsagent run` with in-kernel filters."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentproc import AgentRun, start_agent

pytestmark = pytest.mark.root

HERE = Path(__file__).resolve().parent
WEBAPP = Path("/usr/local/bin/webapp")
SECRET = Path("/etc/my_secrets")
SHELLS = '["bash", "sh", "dash", "zsh", "ksh", "csh", "tcsh", "fish"]'
POLICY = f"""\
version: 1.0.0
rules:
  - id: fim_credentials_leak
    description: Credentials file accessed by an unknown process
    expression: open.file.path == "/etc/my_secrets" && process.file.path != "/usr/local/bin/webapp"
  - id: fim_credentials_delayed_access
    description: Credentials file accessed unexpectedly late
    expression: open.file.path == "/etc/my_secrets" && process.file.path == "/usr/local/bin/webapp" && process.created_at > 5s
  - id: exec_payload
    description: Execution of a payload dropped in a container or of a binary modified from the base image
    expression: process.ancestors.file.path == "/usr/local/bin/webapp" && exec.file.in_upper_layer == true
  - id: exec_shell
    description: Execution of a remote shell
    expression: process.ancestors.file.path == "/usr/local/bin/webapp" && exec.file.name in {SHELLS}
  - id: exec_unknown_binary
    description: Execution of unknown binary
    expression: process.ancestors.file.path == "/usr/local/bin/webapp" && exec.file.name not in {SHELLS}
"""


def _preserve(path: Path, tmp: Path) -> Path | None:
    if path.exists():
        saved = tmp / f"saved-{path.name}"
        shutil.copy2(path, saved)
        return saved
    return None


def _restore(path: Path, saved: Path | None) -> None:
    if saved is None:
        path.unlink(missing_ok=True)
    else:
        shutil.copy2(saved, path)


@pytest.fixture
def webapp(tmp_path: Path) -> Iterator[Path]:
    saved_app, saved_secret = _preserve(WEBAPP, tmp_path), _preserve(SECRET, tmp_path)
    subprocess.run(["gcc", "-O2", "-o", str(WEBAPP), str(HERE / "webapp.c")], check=True)
    SECRET.write_text("s3cr3t\n")
    try:
        yield WEBAPP
    finally:
        _restore(WEBAPP, saved_app)
        _restore(SECRET, saved_secret)


@pytest.fixture
def overlay(tmp_path: Path) -> Iterator[Path]:
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    shutil.copy("/bin/true", lower / "lowerbin")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)], check=True)
    try:
        shutil.copy("/bin/true", merged / "upperbin")  # dropped into the container: upper layer
        assert (upper / "upperbin").exists() and not (upper / "lowerbin").exists()
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)


@pytest.fixture
def agent(tmp_path: Path, built_objects: None) -> Iterator[AgentRun]:
    policy = tmp_path / "demo.policy"
    policy.write_text(POLICY)
    run = start_agent(policy, tmp_path)
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            run.stop()


def _by_rule(alerts: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for a in alerts:
        out.setdefault(a["rule_id"], []).append(a)
    return out


def test_demo_rules_fire_exactly_when_they_should(webapp: Path, overlay: Path, agent: AgentRun) -> None:
    late = subprocess.Popen([str(webapp), "read", str(SECRET), "6"])      # webapp reads after 6 s
    subprocess.run([str(webapp), "read", str(SECRET)], check=True)         # webapp reads at once
    subprocess.run(["cat", str(SECRET)], check=True, capture_output=True)  # someone else reads
    subprocess.run([str(webapp), "spawn", str(overlay / "upperbin")], check=True)
    subprocess.run([str(webapp), "spawn", str(overlay / "lowerbin")], check=True)
    subprocess.run([str(webapp), "spawn", "/bin/sh", "-c", "exit 0"], check=True)
    subprocess.run(["/bin/sh", "-c", "exit 0"], check=True)                 # a shell, not from webapp
    subprocess.run([str(overlay / "upperbin")], check=True)                 # a payload, not from webapp
    assert late.wait(30) == 0
    assert agent.wait_for("fim_credentials_delayed_access"), agent.stop()
    time.sleep(0.5)
    agent.stop()
    alerts = _by_rule(agent.alerts())

    leak = alerts.get("fim_credentials_leak", [])
    assert [a["event"]["process"]["comm"] for a in leak] == ["cat"]
    assert leak[0]["event"]["open"]["file"]["path"] == str(SECRET)

    delayed = alerts.get("fim_credentials_delayed_access", [])
    assert len(delayed) == 1 and delayed[0]["event"]["process"]["pid"] == late.pid

    payload = alerts.get("exec_payload", [])
    assert [a["event"]["exec"]["file"]["path"] for a in payload] == [str(overlay / "upperbin")]
    assert payload[0]["event"]["exec"]["file"]["in_upper_layer"] is True
    assert payload[0]["event"]["process"]["ancestors"][0]["file"]["path"] == str(WEBAPP)

    shell = alerts.get("exec_shell", [])
    assert [a["event"]["exec"]["file"]["name"] for a in shell] == ["dash"]  # /bin/sh -> dash

    unknown = sorted(a["event"]["exec"]["file"]["path"] for a in alerts.get("exec_unknown_binary", []))
    assert unknown == sorted([str(overlay / "upperbin"), str(overlay / "lowerbin")])
    assert set(alerts) == {"fim_credentials_leak", "fim_credentials_delayed_access", "exec_payload",
                           "exec_shell", "exec_unknown_binary"}

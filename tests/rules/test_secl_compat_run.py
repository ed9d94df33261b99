"""`rsagent run` on a policy written like the reference agent's default
policies: host filters, agent_version pairs, silent rules, `every: 0`,
legacy aliases, argument flags, `filter` guards, `set` expressions with
scoped variables, named iterators, `%{field}`, `.length`, the `hash`
action and `*.file.hashes`, and rules it cannot load. The agent starts, reports each
rule it left out once, counts them in its metrics, and the rules it loaded
fire on real events."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from agentproc import start_agent

from agent.process.cgroups import cgroup_id_of_cgroup_file
from sinkutil import free_port

pytestmark = pytest.mark.root

POLICY = """\
version: 1.0.0
macros:
  - id: in_sh_c
    expression: process.ancestors[A].comm == "sh" && process.ancestors[A].argv in ["-c"]
  - id: chmod_in_its_dir
    expression: exec.file.path == "{chmod_dir}/%{{exec.file.name}}"
  - id: watched_tools
    values: ["touch", "chmod"]
    filters: [os == "windows"]
  - id: watched_tools
    values: ["chmod"]
    filters: [os == "linux"]
rules:
  - id: mark_writer
    expression: open.filename == "{target}" && open.flags & O_CREAT > 0
    silent: true
    every: 0
    product_tags: [cws]
    filters: [os == "linux"]
    actions:
      - set: {{name: writes, expression: "${{process.writes}} + 1", scope: process, default_value: 0, inherited: true}}
      - filter: ${{process.writes}} >= 1
        set: {{name: tag, expression: '"w_${{builtins.uuid4}}"', scope: process, inherited: true}}
  - id: chmod_after_write
    expression: chmod.filename == "{target}" && chmod.mode & 0o7777 == 0o700 && process.comm in watched_tools && ${{process.tag}} =~ "w_*"
    agent_version: ">= 7.71"
    every: 0
    filters: [os == "linux", os == "windows"]
  - id: chmod_after_write_old_agents
    expression: chmod.filename == "{target}"
    agent_version: "< 7.71"
  - id: windows_only
    expression: registry.key_path == "x"
    filters: [os == "windows"]
  - id: exec_flags
    expression: exec.file.name == "chmod" && exec.args_flags == "R" && exec.args_options == "reference={target}"
    every: 0
  - id: exec_context
    expression: >-
      exec.file.name == "chmod" && exec.args_flags == "R" && exec.cgroup.id == process.parent.cgroup.id
      && exec.cgroup.id == "{cgroup_id}" && cgroup.file.inode == {cgroup_id}
      && exec.auid == process.parent.auid && (exec.auid == AUDIT_AUID_UNSET || exec.auid >= 0)
    every: 0
  - id: service_exec
    expression: >-
      (exec.envs in ["DD_SERVICE"] || "tags.datadoghq.com/service" in container.tags)
      && event.service == "compat-svc" && exec.file.name == "chmod"
    every: 0
  - id: k8s_session
    expression: exec.user_session.k8s_username != ""
  - id: chmod_in_named_shell
    expression: exec.file.name == "chmod" && in_sh_c && process.argv.length == 4
    every: 0
    actions:
      - hash:
          field: exec.file
  - id: chmod_by_hash
    expression: exec.file.name == "chmod" && exec.file.hashes in ["sha256:{chmod_sha256}"] && chmod_in_its_dir
    every: 0
  - id: typo
    expression: open.file.pth == "/etc/shadow"
  - id: not_produced
    expression: sysctl.name == "kernel.yama.ptrace_scope"
"""


def test_reference_style_policy_loads_what_it_can_and_fires(tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    policy = tmp_path / "compat.policy"
    chmod = os.path.realpath(shutil.which("chmod") or "/usr/bin/chmod")
    with open(chmod, "rb") as f:
        chmod_sha256 = hashlib.sha256(f.read()).hexdigest()
    cgroup_id = cgroup_id_of_cgroup_file(Path("/proc/self/cgroup").read_text())  # the shell's and chmod's
    assert cgroup_id > 0
    policy.write_text(POLICY.format(target=target, chmod_sha256=chmod_sha256, chmod_dir=os.path.dirname(chmod),
                                    cgroup_id=cgroup_id))
    port = free_port()
    log = tmp_path / "agent.log"
    run = start_agent(policy, tmp_path, "--metrics", str(port), "--capture-env", stderr=log)
    try:
        # a shell writes the file, then a chmod child (inherits the shell's variables) changes its mode
        subprocess.run(["sh", "-c", f'echo x > "{target}" && chmod 0700 "{target}" && '
                                    f'chmod -R --reference="{target}" "{target}"'], check=True,
                       env={**os.environ, "DD_SERVICE": "compat-svc"})
        fired = run.wait_for("chmod_after_write")
        flagged = run.wait_for("exec_flags")
        context = run.wait_for("exec_context")
        service = run.wait_for("service_exec")
        iterated = run.wait_for("chmod_in_named_shell")  # its alert waits for the hash worker
        by_hash = run.wait_for("chmod_by_hash")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
    finally:
        stderr = run.stop()
    assert fired and fired[0]["event"]["chmod"]["file"]["path"] == str(target), stderr
    assert flagged and flagged[0]["event"]["exec"]["argv"][:2] == ["chmod", "-R"], stderr
    assert context and context[0]["event"]["exec"]["cgroup"]["id"] == str(cgroup_id), stderr
    assert service and "DD_SERVICE=compat-svc" in service[0]["event"]["exec"]["envp"], stderr
    # a field without a source: the rule loads, never fires, and its place is warned once
    warned = [x for x in stderr.splitlines() if "'exec.user_session.k8s_username' is always empty" in x]
    assert len(warned) == 1 and f"{policy}:" in warned[0], stderr
    # named iterator: sh -c is one ancestor; `hash` reported in the alert, in the action and on the file
    digest = f"sha256:{chmod_sha256}"
    assert iterated and iterated[0]["event"]["exec"]["file"]["path"] == chmod, stderr
    assert iterated[0]["actions"] == [{"hash": {"field": "exec.file.path", "status": "computed", "hashes": [digest]}}] \
        or iterated[0]["actions"][0]["hash"]["status"] == "cached", iterated[0]
    assert iterated[0]["event"]["exec"]["file"]["hashes"] == [digest]
    assert by_hash and by_hash[0]["event"]["exec"]["file"]["path"] == chmod, stderr  # the field read the real digest
    by_hash = [a for a in run.alerts() if a["rule_id"] == "chmod_by_hash"]  # all of them, the agent stopped
    assert all(a["event"]["exec"]["file"]["hashes"] == [digest] for a in by_hash), by_hash  # and the alert shows it
    assert sorted(len(a["event"]["exec"]["argv"]) for a in by_hash) == [3, 4]  # chmod 0700 has no hash action
    assert re.search(r'^rsagent_file_hashes_total{result="computed"} [1-9]', metrics, re.M), metrics
    ids = {a["rule_id"] for a in run.alerts()}
    assert "mark_writer" not in ids and "chmod_after_write_old_agents" not in ids  # silent; excluded
    assert "k8s_session" not in ids
    # every rule left out is reported once, with its place and reason
    for rule, reason in (("typo", "unknown_field"), ("not_produced", "unsupported_type")):
        lines = [x for x in stderr.splitlines() if f"rule '{rule}' not loaded ({reason})" in x]
        assert len(lines) == 1 and f"{policy}:" in lines[0], stderr
    assert "rule(s) loaded; skipped: 1 by filter, 1 by agent_version, 1 unsupported_type, 1 unknown_field" in stderr
    assert "rule 'windows_only' left out: no filter holds on this host" in stderr  # -v
    for reason, n in (("filter", 1), ("agent_version", 1), ("unsupported_type", 1), ("unknown_field", 1)):
        assert re.search(rf'^rsagent_rules_skipped_total{{reason="{reason}"}} {n}(\.0)?$', metrics, re.M), metrics
    assert os.stat(target).st_mode & 0o7777 == 0o700


SCOPES = """\
version: 1.0.0
rules:
  - id: mark_cgroup
    expression: open.file.path == "{marker}"
    silent: true
    actions:
      - set: {{name: marked, value: true, scope: cgroup}}
  - id: read_in_marked_cgroup
    expression: open.file.path == "{probe}" && ${{cgroup.marked}}
    every: 0
"""


def test_cgroup_scoped_variable_is_seen_in_its_cgroup_only(tmp_path: Path) -> None:
    """A variable one process sets with `scope: cgroup` is seen by another process
    of the same cgroup (v2), not by one outside it: real cgroups, real opens."""
    from agent.process.cgroups import cgroup2_mount

    root = cgroup2_mount()
    assert root is not None, "no cgroup2 mount on this host"
    marker, probe = tmp_path / "marker", tmp_path / "probe"
    marker.write_text("")
    probe.write_text("")
    policy = tmp_path / "scopes.policy"
    policy.write_text(SCOPES.format(marker=marker, probe=probe))
    group = Path(root) / f"rs-test-scope-{os.getpid()}"
    group.mkdir()

    def enter() -> None:  # in the child, before exec
        (group / "cgroup.procs").write_text(str(os.getpid()))

    run = start_agent(policy, tmp_path)
    try:
        subprocess.run(["cat", str(marker)], preexec_fn=enter, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cat", str(probe)], check=True, stdout=subprocess.DEVNULL)          # outside: not marked
        subprocess.run(["head", "-c0", str(probe)], preexec_fn=enter, check=True)          # same cgroup: marked
        seen = run.wait_for("read_in_marked_cgroup")
    finally:
        stderr = run.stop()
        group.rmdir()
    alerts = [a for a in run.alerts() if a["rule_id"] == "read_in_marked_cgroup"]
    assert seen and [a["event"]["process"]["comm"] for a in alerts] == ["head"], (alerts, stderr)
    assert alerts[0]["event"]["process"]["cgroup"]["file"]["inode"] != os.stat(root).st_ino

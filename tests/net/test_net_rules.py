"""Network rules through `rsagent run`, the way an operator starts it: a
DNS name, the cloud metadata address as a CIDR, a shell connecting to a
port. The connect rules approve in the kernel (an LPM trie of networks, a
set of ports): connects no rule can match are dropped there and counted."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab import EVIL, EVIL_V4, Lab, sh

pytestmark = pytest.mark.root

RSAGENT = str(Path(sys.executable).parent / "rsagent")
RULEC = str(Path(sys.executable).parent / "rulec")
IMDS = "169.254.169.254"

POLICY = f"""\
version: 1.0.0
rules:
  - id: dns_evil
    expression: dns.question.name == "{EVIL}"
  - id: imds_connect
    expression: connect.addr.ip in {IMDS}/32
  - id: reverse_shell
    expression: process.file.name in ["nc", "bash"] && connect.addr.port == 4444
  - id: mapped_lab_connect
    expression: connect.addr.ip in [10.77.0.0/16, fd00:77::/32] && connect.addr.port == 4445
  - id: evil_host_connect
    expression: connect.addr.hostname in [~"*.example"] && connect.addr.port == 4446
"""


def kv(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class Agent:
    def __init__(self, policy: Path, workdir: Path, *extra: str) -> None:
        self.alerts_path = workdir / "alerts.jsonl"
        ready = workdir / "ready"
        self.proc = subprocess.Popen([RSAGENT, "run", "-v", "--policy", str(policy), "--output",
                                      f"jsonl:{self.alerts_path}", "--ready-file", str(ready), *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"rsagent run exited {self.proc.returncode}: "
                                   f"{self.proc.stderr.read() if self.proc.stderr else ''}")
            assert time.monotonic() < deadline, "rsagent run not ready within 120 s"
            time.sleep(0.05)

    def alerts(self, rule_id: str, timeout: float = 10.0, pred: Any = None) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            lines = self.alerts_path.read_text().splitlines() if self.alerts_path.exists() else []
            found = [a for a in map(json.loads, lines) if a["rule_id"] == rule_id and (pred is None or pred(a))]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return err


def counters(stderr: str) -> dict[str, dict[str, int]]:
    line = [x for x in stderr.splitlines() if "kernel counters:" in x][-1]
    out: dict[str, dict[str, int]] = {}
    for part in line.split("kernel counters:", 1)[1].split(";"):
        name, _, rest = part.strip().partition(": ")
        out[name] = {k: int(v) for k, v in (kv_.split("=") for kv_ in rest.split())}
    return out


@pytest.fixture(scope="module")
def agent(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    work = tmp_path_factory.mktemp("netrules")
    policy = work / "net.policy"
    policy.write_text(POLICY)
    # a fake metadata service: the IMDS address on the server's end, routed on the client's
    sh("ip", "-n", lab.server_ns, "addr", "add", f"{IMDS}/32", "dev", lab.server_if)
    sh("ip", "-n", lab.client_ns, "route", "add", f"{IMDS}/32", "dev", lab.client_if)
    sh("ip", "-n", lab.client_ns, "route", "add", f"{EVIL_V4}/32", "dev", lab.client_if)
    a = Agent(policy, work, "--netns", lab.client_ns)
    try:
        yield a
    finally:
        a.stop()


def serve(lab: Lab, ip: str, port: int) -> subprocess.Popen[str]:
    server = lab.spawn(lab.server_ns, "serve", ip, str(port))
    assert server.stdout is not None
    server.stdout.readline()
    assert int(kv(server.stdout.readline())["port"]) == port
    return server


def test_dns_rule_fires_with_the_querying_process(lab: Lab, agent: Agent) -> None:
    proc = subprocess.Popen(lab.exec_in(lab.client_ns, "getent", "hosts", EVIL), stdout=subprocess.PIPE, text=True)
    proc.communicate(timeout=30)
    alert = agent.alerts("dns_evil", pred=lambda a: a["event"]["process"]["pid"] == proc.pid)[0]
    ev = alert["event"]
    assert ev["dns"]["question"]["name"] == EVIL and ev["process"]["comm"] == "getent"
    assert ev["network"]["device"]["ifname"] == lab.client_if


def test_hostname_rule_fires_on_a_connect_to_a_resolved_address(lab: Lab, agent: Agent) -> None:
    """connect.addr.hostname (only connect rules use it: the agent hooks the
    DNS classifier for it): the name dnsmasq's answer gave the address."""
    # ahostsv4: an A query (`getent hosts` asks AAAA first and stops at its answer)
    proc = subprocess.run(lab.exec_in(lab.client_ns, "getent", "ahostsv4", EVIL), capture_output=True, text=True,
                          timeout=30)
    assert EVIL_V4 in proc.stdout
    res = kv(lab.client("connect", EVIL_V4, "4446", "udp").stdout)
    assert res["rc"] == "0"
    alert = agent.alerts("evil_host_connect", pred=lambda a: a["event"]["process"]["pid"] == int(res["pid"]))[0]
    assert alert["event"]["connect"]["addr"]["hostname"] == EVIL
    # the same address on another port: approved by nothing, dropped in the kernel
    res = kv(lab.client("connect", EVIL_V4, "4447", "udp").stdout)
    assert not agent.alerts("evil_host_connect", timeout=1.0,
                            pred=lambda a: a["event"]["process"]["pid"] == int(res["pid"]))


def test_cidr_rule_on_the_metadata_address(lab: Lab, agent: Agent) -> None:
    server = serve(lab, IMDS, 80)
    res = kv(lab.client("connect", IMDS, "80").stdout)
    server.communicate(timeout=30)
    assert res["rc"] == "0"
    alert = agent.alerts("imds_connect", pred=lambda a: a["event"]["process"]["pid"] == int(res["pid"]))[0]
    assert alert["event"]["connect"]["addr"] == {"ip": IMDS, "port": 80, "family": 2, "is_public": False,
                                                 "hostname": ""}


def test_shell_connecting_to_4444(lab: Lab, agent: Agent) -> None:
    server = serve(lab, lab.server_ip, 4444)
    bash = subprocess.Popen(lab.exec_in(lab.client_ns, "bash", "-c", f"exec 3<>/dev/tcp/{lab.server_ip}/4444"))
    assert bash.wait(30) == 0
    server.communicate(timeout=30)
    alert = agent.alerts("reverse_shell", pred=lambda a: a["event"]["process"]["pid"] == bash.pid)[0]
    ev = alert["event"]
    assert ev["process"]["file"]["path"] == "/usr/bin/bash" and ev["connect"]["addr"]["port"] == 4444
    # python connecting to 4444 is no shell: no alert
    server = serve(lab, lab.server_ip, 4444)
    res = kv(lab.client("connect", lab.server_ip, "4444").stdout)
    server.communicate(timeout=30)
    assert not agent.alerts("reverse_shell", timeout=1.5, pred=lambda a: a["event"]["process"]["pid"] == int(res["pid"]))


def test_ipv4_mapped_connect_is_approved_in_the_kernel(lab: Lab, agent: Agent) -> None:
    server = serve(lab, "::", 4445)
    res = kv(lab.client("mapped", lab.server_ip, "4445").stdout)
    server.communicate(timeout=30)
    alert = agent.alerts("mapped_lab_connect", pred=lambda a: a["event"]["process"]["pid"] == int(res["pid"]))[0]
    assert alert["event"]["connect"]["addr"] == {"ip": lab.server_ip, "port": 4445, "family": 10,
                                                 "is_public": False, "hostname": ""}


def test_unmatched_connects_are_dropped_in_the_kernel(lab: Lab, tmp_path: Path) -> None:
    """A connect no rule names never reaches user space: the approvers drop it."""
    policy = tmp_path / "imds.policy"
    policy.write_text(f"version: 1.0.0\nrules:\n  - id: imds\n    expression: connect.addr.ip in {IMDS}/32\n")
    compile_out = subprocess.run([RULEC, "compile", str(policy), "-o", str(tmp_path / "c")], capture_output=True,
                                 text=True, check=True).stdout
    assert "connect: 1 rule(s); approvers on 1 network(s)" in compile_out
    a = Agent(policy, tmp_path, "--compiled", str(tmp_path / "c"))
    try:
        for port in (9, 10, 11):
            lab.client("connect", lab.server_ip, str(port))  # refused: 3 connects to other addresses
    finally:
        err = a.stop()
    assert counters(err)["connect"]["dropped_approver"] >= 3
    assert not a.alerts("imds", timeout=0)


def _attached(stderr: str) -> list[str]:
    line = [x for x in stderr.splitlines() if "attached " in x and " programs (" in x][-1]
    return line.rsplit(": ", 1)[1].split(", ")


def test_dns_rules_alone_do_not_parse_responses(lab: Lab, tmp_path: Path) -> None:
    """A policy with dns rules and no connect rule leaves the responses'
    classifier out (nothing would show the names it learns): the query's
    alert fires, no response is parsed; the module's agent, with connect
    rules, has it (test_hostname_rule_fires_on_a_connect_to_a_resolved_address)."""
    policy = tmp_path / "dns.policy"
    policy.write_text(f'version: 1.0.0\nrules:\n  - id: dns_evil\n    expression: dns.question.name == "{EVIL}"\n')
    a = Agent(policy, tmp_path, "--netns", lab.client_ns)
    try:
        proc = subprocess.Popen(lab.exec_in(lab.client_ns, "getent", "hosts", EVIL), stdout=subprocess.PIPE,
                                text=True)
        proc.communicate(timeout=30)
        assert a.alerts("dns_evil", pred=lambda x: x["event"]["process"]["pid"] == proc.pid)
    finally:
        err = a.stop()
    progs = _attached(err)
    assert "rs_tc_dns" in progs and "rs_tc_dns_response" not in progs, progs
    parser = [x for x in err.splitlines() if "DNS parser:" in x][-1]
    assert re.search(r"queries: [^;]*\bparsed=[1-9]", parser) and not re.search(r"responses: seen=[1-9]", parser), parser


def test_the_issues_exec_and_connect_rule_is_refused_with_the_reason(tmp_path: Path) -> None:
    """`exec.file.name in [...] && connect.addr.port == 4444` mixes two event
    types (secl.md: a rule applies to exactly one); process.file.name is the
    field of the connecting process."""
    policy = tmp_path / "two.policy"
    policy.write_text('version: 1.0.0\nrules:\n  - id: r\n    expression: exec.file.name in ["nc", "bash"] '
                      '&& connect.addr.port == 4444\n')
    proc = subprocess.run([RULEC, "validate", "--strict", str(policy)], capture_output=True, text=True)
    assert proc.returncode == 1      # (without --strict: a warning, the rule left out, exit 0)
    assert "two event types, 'exec' and 'connect'" in proc.stdout + proc.stderr

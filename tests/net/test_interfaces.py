"""Interfaces that appear after the agent started (the veth of a new
container) get the classifier too, found through netlink link events; those
that go are forgotten."""

from __future__ import annotations

import time

import pytest
from lab import Lab, sh
from nettrace import NetTracer

pytestmark = pytest.mark.root


def kv(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_an_interface_created_after_start_is_covered(lab: Lab, tracer: NetTracer) -> None:
    c_if, s_if = f"rsl{lab.tag}c", f"rsl{lab.tag}s"
    late_c, late_s = f"10.78.{lab.subnet}.2", f"10.78.{lab.subnet}.1"
    classifier = tracer.runtime.classifier
    assert classifier is not None
    late_before = classifier.stats.late
    assert c_if not in lab.ours(lab.client_ns)
    sh("ip", "-n", lab.client_ns, "link", "add", c_if, "type", "veth", "peer", "name", s_if,
       "netns", lab.server_ns)
    sh("ip", "-n", lab.client_ns, "addr", "add", f"{late_c}/24", "dev", c_if)
    sh("ip", "-n", lab.server_ns, "addr", "add", f"{late_s}/24", "dev", s_if)
    sh("ip", "-n", lab.client_ns, "link", "set", c_if, "up")
    sh("ip", "-n", lab.server_ns, "link", "set", s_if, "up")
    deadline = time.monotonic() + 10
    while c_if not in lab.ours(lab.client_ns):
        assert time.monotonic() < deadline, "no filter of ours on the new interface within 10 s"
        time.sleep(0.05)
    assert s_if in lab.ours(lab.server_ns)  # the other watched namespace's new end too
    assert classifier.stats.late >= late_before + 2
    # a query leaving through it (no server there: only the query matters)
    res = kv(lab.client("query", late_s, "late.interface.example", check=False).stdout)
    d = tracer.wait_for(lambda d: d["type"] == "dns" and d["process"]["pid"] == int(res["pid"]))[0]
    assert d["network"]["device"]["ifname"] == c_if
    assert d["network"]["source"]["ip"] == late_c and d["dns"]["question"]["name"] == "late.interface.example"
    # deleted: forgotten without a failure
    failed = classifier.stats.failed
    sh("ip", "-n", lab.client_ns, "link", "del", c_if)
    res = kv(lab.client("query", lab.server_ip, "after.delete.example").stdout)
    tracer.wait_for(lambda d: d["type"] == "dns" and d["process"]["pid"] == int(res["pid"]))
    assert classifier.stats.failed == failed

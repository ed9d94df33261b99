"""connect, bind, accept: real sockets in network namespaces joined by a
veth pair, made by the test; each event must name the process that made
the call (pid, comm, executable) and the addresses the kernel used."""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

import pytest
from lab import Lab
from nettrace import NetTracer

pytestmark = pytest.mark.root

PY_EXE = os.path.realpath(sys.executable)
PY_COMM = os.path.basename(sys.executable)[:15]  # comm: the name exec was given


def kv(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def by(pid: int, event_type: str):
    return lambda d: d["type"] == event_type and d["process"]["pid"] == pid


def assert_python_process(doc: dict[str, Any], pid: int) -> None:
    p = doc["process"]
    assert p["pid"] == pid and p["comm"] == PY_COMM
    assert p["file"]["path"] == PY_EXE
    assert p["uid"] == 0 and p["ppid"] > 0


def test_tcp_connect_ipv4(lab: Lab, tracer: NetTracer) -> None:
    server = lab.spawn(lab.server_ns, "serve", lab.server_ip, "0")
    assert server.stdout is not None
    kv(server.stdout.readline())  # pid
    port = int(kv(server.stdout.readline())["port"])
    res = kv(lab.client("connect", lab.server_ip, str(port)).stdout)
    server.communicate(timeout=30)
    pid = int(res["pid"])
    doc = tracer.wait_for(by(pid, "connect"))[0]
    assert_python_process(doc, pid)
    c = doc["connect"]
    assert c["retval"] == 0 and c["protocol"] == 6 and c["socket_type"] == 1
    assert c["addr"] == {"ip": lab.server_ip, "port": port, "family": 2, "is_public": False, "hostname": ""}
    assert c["local"]["ip"] == lab.client_ip and c["local"]["port"] == int(res["lport"])
    assert "addr_source" not in c


def test_tcp_connect_ipv6_and_ipv4_mapped(lab: Lab, tracer: NetTracer) -> None:
    server = lab.spawn(lab.server_ns, "serve", "::", "0")
    assert server.stdout is not None
    server.stdout.readline()
    port = int(kv(server.stdout.readline())["port"])
    res = kv(lab.client("connect", lab.server_ip6, str(port)).stdout)
    server.communicate(timeout=30)
    doc = tracer.wait_for(by(int(res["pid"]), "connect"))[0]
    assert doc["connect"]["addr"] == {"ip": lab.server_ip6, "port": port, "family": 10, "is_public": False,
                                      "hostname": ""}
    # an AF_INET6 socket reaching an IPv4 peer: reported as the IPv4 address
    server = lab.spawn(lab.server_ns, "serve", "::", "0")
    assert server.stdout is not None
    server.stdout.readline()
    port = int(kv(server.stdout.readline())["port"])
    res = kv(lab.client("mapped", lab.server_ip, str(port)).stdout)
    server.communicate(timeout=30)
    assert res["rc"] == "0"
    doc = tracer.wait_for(by(int(res["pid"]), "connect"))[0]
    assert doc["connect"]["addr"] == {"ip": lab.server_ip, "port": port, "family": 10, "is_public": False,
                                      "hostname": ""}


def test_udp_connect_and_sendto(lab: Lab, tracer: NetTracer) -> None:
    res = kv(lab.client("connect", lab.server_ip, "9999", "udp").stdout)
    doc = tracer.wait_for(by(int(res["pid"]), "connect"))[0]
    c = doc["connect"]
    assert c["protocol"] == 17 and c["socket_type"] == 2 and c["retval"] == 0
    assert c["addr"]["ip"] == lab.server_ip and c["addr"]["port"] == 9999
    # an unconnected sendto is no connect: a DNS query sent that way is a dns event
    res = kv(lab.client("query", lab.server_ip, "sendto.example").stdout)
    pid = int(res["pid"])
    doc = tracer.wait_for(by(pid, "dns"))[0]
    assert not tracer.matching(by(pid, "connect"))
    assert doc["network"]["source"]["port"] == int(res["sport"])
    assert doc["network"]["destination"] == {"ip": lab.server_ip, "port": 53, "family": 2, "is_public": False}
    assert_python_process(doc, pid)


def test_failed_connect_reports_the_callers_address(lab: Lab, tracer: NetTracer) -> None:
    # nothing listens on that port: the server's kernel answers RST
    res = kv(lab.client("connect", lab.server_ip, "1", "tcp").stdout)
    assert int(res["rc"]) == errno.ECONNREFUSED
    doc = tracer.wait_for(by(int(res["pid"]), "connect"))[0]
    c = doc["connect"]
    assert c["retval"] == -errno.ECONNREFUSED and c["addr_source"] == "caller"
    assert c["addr"]["ip"] == lab.server_ip and c["addr"]["port"] == 1


def test_bind_and_accept_of_a_listening_socket(lab: Lab, tracer: NetTracer) -> None:
    server = lab.spawn(lab.server_ns, "serve", lab.server_ip, "0")
    assert server.stdout is not None
    spid = int(kv(server.stdout.readline())["pid"])
    port = int(kv(server.stdout.readline())["port"])
    client = kv(lab.client("connect", lab.server_ip, str(port)).stdout)
    rest = kv(server.communicate(timeout=30)[0])
    # bind(port 0): the port the kernel picked, not the 0 the caller passed
    bind = tracer.wait_for(by(spid, "bind"))[0]
    assert_python_process(bind, spid)
    assert bind["bind"]["addr"] == {"ip": lab.server_ip, "port": port, "family": 2, "is_public": False}
    assert bind["bind"]["retval"] == 0 and bind["bind"]["protocol"] == 6
    acc = tracer.wait_for(by(spid, "accept"))[0]
    a = acc["accept"]
    # as the reference agent: the peer's address and the local port
    assert a["addr"] == {"ip": lab.client_ip, "port": port, "family": 2, "is_public": False}
    assert a["peer"]["port"] == int(client["lport"]) == int(rest["peer_port"])
    assert a["local"] == {"ip": lab.server_ip, "port": port, "family": 2, "is_public": False}
    assert a["retval"] >= 0


def test_failed_bind(lab: Lab, tracer: NetTracer) -> None:
    res = kv(lab.client("bindfail", "192.0.2.1").stdout)
    assert int(res["rc"]) == -errno.EADDRNOTAVAIL
    doc = tracer.wait_for(by(int(res["pid"]), "bind"))[0]
    b = doc["bind"]
    assert b["retval"] == -errno.EADDRNOTAVAIL and b["addr_source"] == "caller"
    assert b["addr"]["ip"] == "192.0.2.1" and b["addr"]["is_public"] is False

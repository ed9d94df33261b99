"""DNS queries seen on tc egress: a real DNS server (dnsmasq, started by the
lab on the server's veth address), queries from `getent hosts` and from a
Python client in the client namespace, each reported with its name, type,
class, id and the process that sent it. Malformed messages are counted and
never reported, and every packet the kernel saw is accounted for."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys

import pytest
from lab import CLIENT, EVIL, EVIL_V4, EVIL_V6, Lab, dns_query
from nettrace import NetTracer

from agent.net.stats import ENDINGS, MALFORMED

pytestmark = pytest.mark.root

PY_EXE = os.path.realpath(sys.executable)


def kv(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def dns_of(pid: int):
    return lambda d: d["type"] == "dns" and d["process"]["pid"] == pid


def test_getent_hosts_query_names_getent(lab: Lab, tracer: NetTracer) -> None:
    # `ip netns exec` execs getent in its own process: Popen's pid is getent's
    proc = subprocess.Popen(lab.exec_in(lab.client_ns, "getent", "hosts", EVIL), stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and (EVIL_V4 in out or EVIL_V6 in out)  # dnsmasq answered
    docs = tracer.wait_for(dns_of(proc.pid))
    d = docs[0]
    q = d["dns"]["question"]
    assert q["name"] == EVIL and q["class"] == 1 and q["count"] == 1
    assert {x["dns"]["question"]["type"] for x in docs} <= {1, 28}  # A, AAAA
    p = d["process"]
    assert p["comm"] == "getent" and p["file"]["path"] == "/usr/bin/getent"
    assert p["argv"] == ["getent", "hosts", EVIL]
    assert d["dns"]["attribution"] == "sending_task"
    assert d["network"]["destination"]["ip"] == lab.server_ip and d["network"]["destination"]["port"] == 53
    assert d["network"]["device"]["ifname"] == lab.client_if


def test_python_query_every_field(lab: Lab, tracer: NetTracer) -> None:
    name = "Mixed.CASE.example"
    res = kv(lab.client("query", lab.server_ip, name, "16", "0xbeef").stdout)
    assert res["answered"] == "1"
    pid = int(res["pid"])
    d = tracer.wait_for(dns_of(pid))[0]
    msg = dns_query(name, 16, 0xBEEF)
    assert d["dns"]["id"] == 0xBEEF and d["dns"]["flags"] == 0x0100
    assert d["dns"]["question"] == {"name": "mixed.case.example", "type": 16, "class": 1,
                                    "length": len(msg), "count": 1}
    n = d["network"]
    assert n["source"] == {"ip": lab.client_ip, "port": int(res["sport"]), "family": 2, "is_public": False}
    assert n["l3_protocol"] == 0x0800 and n["l4_protocol"] == 17 and n["network_direction"] == 2
    assert n["size"] == 14 + 20 + 8 + len(msg)  # Ethernet, IPv4, UDP headers + the message
    assert n["device"]["ifname"] == lab.client_if
    assert d["process"]["pid"] == pid and d["process"]["file"]["path"] == PY_EXE


def test_ipv6_query(lab: Lab, tracer: NetTracer) -> None:
    res = kv(lab.client("query", lab.server_ip6, "six.example", "28").stdout)
    assert res["answered"] == "1"
    d = tracer.wait_for(dns_of(int(res["pid"])))[0]
    n = d["network"]
    assert n["l3_protocol"] == 0x86DD and n["source"]["ip"] == lab.client_ip6
    assert n["destination"] == {"ip": lab.server_ip6, "port": 53, "family": 10, "is_public": False}
    assert d["dns"]["question"]["name"] == "six.example" and d["dns"]["question"]["type"] == 28


def test_query_without_a_send_call_is_the_socket_owners(lab: Lab, tracer: NetTracer) -> None:
    """sendfile(2) on a connected UDP socket: no send call to recognize, the
    owner recorded at connect() names the process."""
    res = kv(lab.client("sendfile", lab.server_ip, "owner.example").stdout)
    assert int(res["sent"]) > 0 and res["answered"] == "1"
    d = tracer.wait_for(dns_of(int(res["pid"])))[0]
    assert d["dns"]["attribution"] == "socket_owner"
    assert d["dns"]["question"]["name"] == "owner.example" and d["dns"]["id"] == 0x5151
    assert d["process"]["file"]["path"] == PY_EXE


def test_socket_connected_before_the_agent_started_is_unattributed(lab: Lab, tracer: NetTracer) -> None:
    """Connected before this second agent started, sent without a send call:
    it cannot know the process, says so, and counts it. (Two agents on one
    interface also keep out of each other's way.)"""
    proc = lab.spawn(lab.client_ns, "sendfile", lab.server_ip, "late.example", "wait")
    assert proc.stdout is not None and proc.stdin is not None
    pid = int(kv(proc.stdout.readline())["pid"])
    assert kv(proc.stdout.readline())["ready"] == "1"
    second = NetTracer((lab.client_ns,), frozenset({"dns"})).start()
    try:
        before = second.dns_stats()["unattributed"]
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert kv(proc.communicate(timeout=30)[0])["answered"] == "1"
        d = second.wait_for(lambda d: d["type"] == "dns" and d["dns"]["question"]["name"] == "late.example")[0]
        assert d["dns"]["attribution"] == "none" and d["process"] == {"pid": 0}
        assert second.dns_stats()["unattributed"] == before + 1
        # the first agent knew the owner: it saw the connect
        first = tracer.wait_for(dns_of(pid))[0]
        assert first["dns"]["attribution"] == "socket_owner"
    finally:
        second.stop()
    assert lab.ours(lab.client_ns), "stopping the second agent removed the first one's filters"


# -- malformed messages ------------------------------------------------------------------

def header(qid: int, qdcount: int = 1, flags: int = 0x0100) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qdcount, 0, 0, 0)


TAIL = struct.pack("!HH", 1, 1)
MALFORMED_CASES: list[tuple[str, bytes]] = [
    ("bad_pointer", header(0xA001) + b"\xc0\x0c" + TAIL),                      # points at itself: a loop
    ("bad_pointer", header(0xA002) + b"\x03abc\xc0\x0c" + TAIL),               # back to its own start
    ("bad_pointer", header(0xA003) + b"\x03abc\xc0\x20" + TAIL + b"\x00" * 20),  # forward
    ("bad_pointer", header(0xA004) + b"\xc0\x02" + TAIL),                      # into the header
    ("bad_label", header(0xA005) + b"\x40" + b"a" * 64 + b"\x00" + TAIL),      # a 64-byte label
    ("bad_label", header(0xA006) + b"\x80abc\x00" + TAIL),                     # reserved label type
    ("name_too_long", header(0xA007) + (b"\x3f" + b"b" * 63) * 5 + b"\x00" + TAIL),  # 321 bytes
    ("truncated", header(0xA008)[:8]),                                         # not even a header
    ("truncated", header(0xA009) + b"\x05ab"),                                 # ends inside a label
    ("truncated", header(0xA00A) + b"\x03abc\x00\x00"),                        # no type and class
    ("truncated", header(0xA00B) + b"\x03abc"),                                # no root label
    ("no_question", header(0xA00C, qdcount=0) + b"\x03abc\x00" + TAIL),
    ("not_query", header(0xA00D, flags=0x8180) + b"\x03abc\x00" + TAIL),        # a response
    ("not_query", header(0xA00E, flags=0x2800) + b"\x03abc\x00" + TAIL),        # opcode UPDATE
]


def _counts(tracer: NetTracer) -> tuple[dict[str, int], int]:
    kernel = tracer.runtime.kernel_stats().get("dns")
    return tracer.dns_stats(), kernel.seen if kernel else 0


def test_malformed_queries_are_counted_not_sent(lab: Lab, tracer: NetTracer) -> None:
    stats0, _ = _counts(tracer)
    payloads = [p.hex() for _, p in MALFORMED_CASES]
    res = kv(lab.client("raw", lab.server_ip, *payloads).stdout)
    assert int(res["sent"]) == len(MALFORMED_CASES)
    # the parser is still there: a good query after them is reported
    good = kv(lab.client("query", lab.server_ip, "after.malformed.example").stdout)
    tracer.wait_for(dns_of(int(good["pid"])))
    stats1, _ = _counts(tracer)
    expected: dict[str, int] = {}
    for reason, _ in MALFORMED_CASES:
        expected[reason] = expected.get(reason, 0) + 1
    for reason, n in expected.items():
        assert stats1[reason] - stats0[reason] == n, (reason, stats0, stats1)
    ids = {struct.unpack("!H", p[:2])[0] for _, p in MALFORMED_CASES}
    assert not tracer.matching(lambda d: d["type"] == "dns" and d["dns"]["id"] in ids)
    assert tracer.runtime.decoder.errors == {}


def test_random_messages_are_all_accounted_for(lab: Lab, tracer: NetTracer) -> None:
    """Fuzz: random bytes and mutated queries. Nothing crashes or hangs, every
    packet the kernel saw ends in exactly one counter, and what was sent decodes."""
    rng = random.Random(10)
    base = dns_query("fuzz.example.org", 1, 0x7777)
    payloads = []
    for i in range(400):
        if i % 2:
            payloads.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600))))
        else:
            m = bytearray(base)
            for _ in range(rng.randrange(1, 6)):
                m[rng.randrange(len(m))] = rng.randrange(256)
            payloads.append(bytes(m[:rng.randrange(1, len(m) + 1)]))
    stats0, seen0 = _counts(tracer)
    sent0 = tracer.runtime.kernel_stats()["dns"]
    proc = subprocess.run(lab.exec_in(lab.client_ns, sys.executable, str(CLIENT), "raw", lab.server_ip),
                          input="\n".join(p.hex() for p in payloads), capture_output=True, text=True, timeout=60)
    assert kv(proc.stdout)["sent"] == str(len(payloads))
    good = kv(lab.client("query", lab.server_ip, "after.fuzz.example").stdout)
    tracer.wait_for(dns_of(int(good["pid"])))
    stats1, seen1 = _counts(tracer)
    delta = {k: stats1[k] - stats0[k] for k in stats1}
    assert seen1 - seen0 == sum(delta[k] for k in ENDINGS), delta
    assert seen1 - seen0 >= len(payloads) + 1
    assert sum(delta[k] for k in MALFORMED) > 0
    kernel = tracer.runtime.kernel_stats()["dns"]
    assert kernel.sent + kernel.lost - sent0.sent - sent0.lost == delta["parsed"]
    assert tracer.runtime.decoder.errors == {}

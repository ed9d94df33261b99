"""connect.addr.hostname: the DNS responses arriving on the watched
interfaces (tc ingress) are parsed in the kernel, their A/AAAA answers kept
by the agent, and a later connect to an answered address carries the name
asked. Real responses come from dnsmasq (the lab's server); crafted ones
(CNAME chains, compression pointers, malformed and oversized messages) are
sent from a socket bound to port 53 on the client namespace's loopback,
which the classifier watches as well. Last, a reload's handover of the
classifiers with a query loop running across it. One agent for the
module."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from lab import EVIL, EVIL_V4, EVIL_V6, Lab, sh
from nettrace import NetTracer

from agent.net.stats import RESPONSE_ENDINGS

pytestmark = pytest.mark.root

# the crafted responses' addresses (routed on the client's veth: connects succeed)
CRAFTED = {"plain": "10.9.9.1", "alias": "10.9.9.2", "cut": "10.9.9.3", "bad": "10.9.9.4", "v6": "fd00:99::1"}

SEND_RESPONSES = r"""
import socket, sys
payloads = [bytes.fromhex(line.strip()) for line in sys.stdin if line.strip()]
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(("127.0.0.1", 53))
dst = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst.bind(("127.0.0.1", 0))
for p in payloads:
    srv.sendto(p, dst.getsockname())
    dst.recv(65536)
print("sent=%d" % len(payloads))
"""


def wire(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in name.encode().split(b".") if label) + b"\0"


def rr(owner: bytes, rtype: int, rdata: bytes, ttl: int = 300) -> bytes:
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def response(name: str, answers: list[bytes], qid: int = 0x7777, rcode: int = 0, qtype: int = 1) -> bytes:
    head = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(answers), 0, 0)
    return head + wire(name) + struct.pack("!HH", qtype, 1) + b"".join(answers)


PTR_QNAME = b"\xc0\x0c"          # a pointer to the question's name (offset 12)


def v4(ip: str) -> bytes:
    return bytes(int(x) for x in ip.split("."))


@pytest.fixture(scope="module")
def routed(lab: Lab) -> Lab:
    for ip in (EVIL_V4, *(a for a in CRAFTED.values() if ":" not in a)):
        sh("ip", "-n", lab.client_ns, "route", "add", f"{ip}/32", "dev", lab.client_if)
    for ip in (EVIL_V6, CRAFTED["v6"]):
        sh("ip", "-n", lab.client_ns, "-6", "route", "add", f"{ip}/128", "dev", lab.client_if)
    return lab


@pytest.fixture(scope="module")
def crafted(routed: Lab, tracer: NetTracer) -> Iterator[dict[str, int]]:
    """Sends the crafted responses once; yields the response counters' change."""
    lab = routed
    before = tracer.dns_stats()
    v6 = socket.inet_pton(socket.AF_INET6, CRAFTED["v6"])
    cname_target = wire("target.example")
    alias_msg = response("alias.example", [
        rr(PTR_QNAME, 5, cname_target),                                 # CNAME alias -> target
        rr(b"\xc0\x2b", 1, v4(CRAFTED["alias"]), ttl=60),              # target's A (owner: the CNAME's rdata)
    ])
    assert alias_msg[0x2b:0x2b + len(cname_target)] == cname_target  # the pointer above points at it
    good = [
        response("plain.example", [rr(PTR_QNAME, 1, v4(CRAFTED["plain"])), rr(PTR_QNAME, 28, v6)]),
        alias_msg,
        # an answer section past the 512 bytes the parser reads: the first answer is kept
        response("cut.example", [rr(PTR_QNAME, 1, v4(CRAFTED["cut"]))]
                 + [rr(PTR_QNAME, 16, bytes([200]) + b"x" * 200)] * 4),
        response("nx.example", [], rcode=3),
    ]
    bad_answer = rr(PTR_QNAME, 1, v4(CRAFTED["bad"]))
    malformed = {
        # the answer's owner is a forward pointer (to itself)
        "resp_bad_pointer": response("bad1.example", [b"\xc0\x1e" + bad_answer[2:]]),
        # rdlength past the end of the message
        "resp_truncated": response("bad2.example", [bad_answer])[:-2],
        # a 64-byte label in an answer's owner name
        "resp_bad_label": response("bad3.example", [bytes([0x40]) + b"a" * 64 + b"\0" + bad_answer[2:]]),
        "resp_no_question": struct.pack("!HHHHHH", 1, 0x8180, 0, 1, 0, 0) + bad_answer,
    }
    payloads = good + list(malformed.values())
    proc = subprocess.run(lab.exec_in(lab.client_ns, "python3", "-c", SEND_RESPONSES),
                          input="\n".join(p.hex() for p in payloads), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and f"sent={len(payloads)}" in proc.stdout, proc.stderr
    # the counters of what went through the loopback's ingress
    deadline = time.monotonic() + 10
    while True:
        now = tracer.dns_stats()
        delta = {k: now.get(k, 0) - before.get(k, 0) for k in now}
        if delta["response"] >= len(payloads) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    yield {**delta, **{f"expect_{k}": 1 for k in malformed}}


def connect_doc(lab: Lab, tracer: NetTracer, ip: str) -> dict:
    res = dict(line.split("=", 1) for line in lab.client("connect", ip, "4446", "udp").stdout.splitlines())
    assert res["rc"] == "0"
    pid = int(res["pid"])
    return tracer.wait_for(lambda d: d["type"] == "connect" and d["process"]["pid"] == pid)[0]


def test_getent_then_connect_names_the_address(routed: Lab, tracer: NetTracer) -> None:
    lab = routed
    proc = subprocess.run(lab.exec_in(lab.client_ns, "getent", "ahosts", EVIL), capture_output=True,
                          text=True, timeout=30)
    assert EVIL_V4 in proc.stdout and EVIL_V6 in proc.stdout  # dnsmasq answered A and AAAA
    for ip in (EVIL_V4, EVIL_V6):
        d = connect_doc(lab, tracer, ip)
        assert d["connect"]["addr"]["ip"] == ip and d["connect"]["addr"]["hostname"] == EVIL
    # no document of their own: responses only feed the names
    assert not tracer.matching(lambda d: d["type"] == "dns" and d["network"]["network_direction"] != 2)


def test_an_address_never_answered_has_no_name(routed: Lab, tracer: NetTracer) -> None:
    d = connect_doc(routed, tracer, routed.server_ip)
    assert d["connect"]["addr"]["hostname"] == ""


def test_crafted_responses_name_their_addresses(routed: Lab, tracer: NetTracer, crafted: dict[str, int]) -> None:
    assert connect_doc(routed, tracer, CRAFTED["plain"])["connect"]["addr"]["hostname"] == "plain.example"
    assert connect_doc(routed, tracer, CRAFTED["v6"])["connect"]["addr"]["hostname"] == "plain.example"
    # a CNAME chain: the address is named by the question, not the CNAME's target
    assert connect_doc(routed, tracer, CRAFTED["alias"])["connect"]["addr"]["hostname"] == "alias.example"
    assert connect_doc(routed, tracer, CRAFTED["cut"])["connect"]["addr"]["hostname"] == "cut.example"


def test_malformed_responses_are_counted_and_never_name_anything(routed: Lab, tracer: NetTracer,
                                                                  crafted: dict[str, int]) -> None:
    for k in ("resp_bad_pointer", "resp_truncated", "resp_bad_label", "resp_no_question"):
        assert crafted[k] == crafted[f"expect_{k}"], (k, crafted)
    assert crafted["resp_parsed"] >= 4 and crafted["resp_cut"] == 1
    # every response seen ended in exactly one way
    assert crafted["response"] == sum(crafted[k] for k in RESPONSE_ENDINGS), crafted
    assert connect_doc(routed, tracer, CRAFTED["bad"])["connect"]["addr"]["hostname"] == ""


QUERY_LOOP = r"""
import socket, struct, sys, time
server = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("ready", flush=True)
n = 0
sys.stdin.readline()                      # go
while True:
    name = b"q%d" % n
    msg = (struct.pack("!HHHHHH", n & 0xFFFF, 0x0100, 1, 0, 0, 0) + bytes([len(name)]) + name
           + b"\x04loop\x07example\x00" + struct.pack("!HH", 1, 1))
    s.sendto(msg, (server, 53))
    n += 1
    time.sleep(0.002)
    if n % 50 == 0:
        import select
        if select.select([sys.stdin], [], [], 0)[0]:
            break
print("sent=%d" % n, flush=True)
"""


def test_queries_during_a_handover_are_reported_once(routed: Lab, tracer: NetTracer) -> None:
    """A reload attaches the new generation's classifiers beside the old
    ones before the switch (ebpf/hooks/dns.h rs_dns_other_generation): a
    query loop running across it is reported exactly once per query, and
    afterwards one filter of ours is left per hook."""
    lab, runtime = routed, tracer.runtime
    loop = subprocess.Popen(lab.exec_in(lab.client_ns, "python3", "-c", QUERY_LOOP, lab.server_ip),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert loop.stdin is not None and loop.stdout is not None
    assert loop.stdout.readline().strip() == "ready"
    done, switched, errors = threading.Event(), threading.Event(), []

    def handover() -> None:
        try:
            runtime.handover(runtime.config, lambda obj: None, switched.set)
        except (OSError, ValueError, RuntimeError) as exc:  # reported by the test, not lost in the loop
            errors.append(exc)
        finally:
            done.set()

    loop.stdin.write("go\n")
    loop.stdin.flush()
    time.sleep(0.3)
    runtime.call_soon(handover)
    assert done.wait(120) and not errors, errors
    time.sleep(0.3)
    loop.stdin.write("stop\n")
    loop.stdin.flush()
    out, _ = loop.communicate(timeout=30)
    sent = int(out.split("sent=")[1])
    names = {f"q{i}.loop.example" for i in range(sent)}
    tracer.wait_for(lambda d: d["type"] == "dns" and d["dns"]["question"]["name"] == f"q{sent - 1}.loop.example")
    assert switched.wait(10)
    seen = Counter(d["dns"]["question"]["name"] for d in tracer.matching(
        lambda d: d["type"] == "dns" and d["dns"]["question"]["name"].endswith(".loop.example")))
    assert sent > 100 and set(seen) == names, sorted(names - set(seen))[:10]
    assert set(seen.values()) == {1}, [n for n, c in seen.items() if c > 1][:10]
    # the old generation's filters are gone: one of ours per hook and interface
    for hook in ("egress", "ingress"):
        text = sh("ip", "netns", "exec", lab.client_ns, "tc", "filter", "show", "dev", lab.client_if, hook).stdout
        assert sum("rsagent:" in ln for ln in text.splitlines()) == 1, text

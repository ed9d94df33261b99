"""The pure-Python parts of the network events (no kernel): CIDR matching in
the evaluator, the address and port approvers the compiler finds, the
map keys the agent writes, DNS name text, filter ownership, state files."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest
from codegen.cbackend import ADDR, PORT, type_filter
from codegen.policy import compile_expression, load_policies

from agent.evaluator.event import DocumentEvent
from agent.events.decode import DecodeError, dns_name
from agent.events.layout import layout
from agent.events.net_events import address
from agent.kfilters import addr_key, port_key
from agent.net.namespaces import NamespaceError, resolve
from agent.net.owners import Owner, State, StateFiles, me

CONNECT: dict[str, Any] = {
    "type": "connect", "timestamp": 1,
    "connect": {"addr": {"ip": "169.254.169.254", "port": 80, "family": 2}, "retval": 0, "protocol": 6},
    "process": {"pid": 7, "comm": "curl", "file": {"path": "/usr/bin/curl", "name": "curl"}},
}


def matches(expr: str, doc: dict[str, Any] = CONNECT) -> bool:
    compiled, diags = compile_expression(expr)
    assert compiled is not None, [d.format() for d in diags]
    return compiled.matches(DocumentEvent(doc))


@pytest.mark.parametrize(("expr", "expected"), [
    ("connect.addr.ip in 169.254.169.254/32", True),
    ("connect.addr.ip in 169.254.0.0/16", True),
    ("connect.addr.ip in 10.0.0.0/8", False),
    ("connect.addr.ip not in 10.0.0.0/8", True),
    ("connect.addr.ip in [10.0.0.0/8, 169.254.169.254/32]", True),
    ("connect.addr.ip allin [169.254.0.0/16]", True),
    ("connect.addr.ip == 169.254.169.254", True),
    ("connect.addr.ip == 169.254.169.253", False),
    ("connect.addr.ip in fe80::/10", False),  # another family never matches
    ("connect.addr.port == 80 && process.file.name in [\"curl\", \"wget\"]", True),
])
def test_cidr_matching(expr: str, expected: bool) -> None:
    assert matches(expr) is expected


def test_ipv6_cidr_and_missing_address() -> None:
    doc = {**CONNECT, "connect": {"addr": {"ip": "fd00:77::1", "port": 53, "family": 10}}}
    assert matches("connect.addr.ip in fd00::/8", doc)
    assert not matches("connect.addr.ip in 10.0.0.0/8", doc)
    assert not matches("connect.addr.ip in ::/0", {**CONNECT, "connect": {"addr": {"port": 1}}})


def test_ipv4_mapped_addresses_are_reported_as_ipv4() -> None:
    mapped = ipaddress.IPv6Address("::ffff:169.254.169.254").packed
    assert str(address(10, mapped)) == "169.254.169.254"
    assert str(address(10, ipaddress.IPv6Address("fd00::1").packed)) == "fd00::1"
    assert str(address(2, bytes([10, 0, 0, 1]) + bytes(12))) == "10.0.0.1"
    assert address(0, bytes(16)) is None


def _rules(tmp_path: Path, *exprs: str) -> Any:
    policy = tmp_path / "p.policy"
    policy.write_text("version: 1.0.0\nrules:\n" + "".join(
        f"  - id: r{i}\n    expression: '{e}'\n" for i, e in enumerate(exprs)))
    result = load_policies([policy])
    assert result.ok and not result.failed, [d.format() for d in result.problems()]
    return result.ruleset


def test_address_and_port_approvers(tmp_path: Path) -> None:
    rs = _rules(tmp_path, "connect.addr.ip in [10.0.0.0/8, fd00::/8]",
                'process.file.name == "bash" && connect.addr.port in [4444, 5555]',
                "connect.addr.ip == 169.254.169.254 && connect.addr.port == 80")
    f = type_filter("connect", rs.rules_for("connect"))
    assert f.approve_kinds == (ADDR, PORT)
    # the third rule offers both: the address (weight 90) is chosen
    assert f.networks == {ipaddress.ip_network(n) for n in ("10.0.0.0/8", "fd00::/8", "169.254.169.254/32")}
    assert f.ports == {4444, 5555}
    assert f.manifest()["networks"] == ["10.0.0.0/8", "169.254.169.254/32", "fd00::/8"]


def test_no_approvers_when_a_rule_offers_none(tmp_path: Path) -> None:
    rs = _rules(tmp_path, "connect.addr.ip in 10.0.0.0/8",
                "connect.addr.port == 22 || connect.addr.ip in 192.168.0.0/16",  # OR-ed fields
                "connect.addr.ip not in 10.0.0.0/8")
    for rule in rs.rules_for("connect")[1:]:
        f = type_filter("connect", [rule])
        assert f.approve_kinds == () and f.reason
    assert type_filter("dns", _rules(tmp_path, 'dns.question.name == "x.example"').rules_for("dns")).approve_kinds == ()


def test_approver_map_keys() -> None:
    lay = layout()
    key = lay.ffi.cast("struct rs_addr_key *", lay.ffi.from_buffer(addr_key(17, ipaddress.ip_network("10.1.0.0/16"),
                                                                              lay)))
    assert key.prefixlen == 16 + 16 and key.type == 17 and key.family == 4
    assert bytes(key.addr)[:4] == bytes([10, 1, 0, 0])
    key6 = lay.ffi.cast("struct rs_addr_key *", lay.ffi.from_buffer(addr_key(18, ipaddress.ip_network("fd00::/8"),
                                                                               lay)))
    assert key6.prefixlen == 16 + 8 and key6.family == 6 and bytes(key6.addr)[0] == 0xFD
    assert port_key(17, 70000, lay) is None
    pk = lay.ffi.cast("struct rs_port_key *", lay.ffi.from_buffer(port_key(17, 4444, lay) or b""))
    assert pk.type == 17 and pk.port == 4444


def test_dns_name_text() -> None:
    assert dns_name(b"\x03WWW\x07Example\x03com\x00") == "www.example.com"
    assert dns_name(b"\x00") == "."
    # a dot, a space or a NUL inside a label is escaped: no two names print alike
    assert dns_name(b"\x03a.b\x03c d\x01\x00\x00") == "a\\046b.c\\032d.\\000"
    assert dns_name(b"\x05_ldap\x04_tcp\x00") == "_ldap._tcp"
    for bad in (b"", b"\x03ab", b"\x40" + b"a" * 64 + b"\x00", b"\x03abc"):
        with pytest.raises(DecodeError):
            dns_name(bad)


def test_filter_names_and_owner_liveness() -> None:
    mine = me()
    assert Owner.parse(mine.filter_name) == mine and mine.alive()
    assert Owner.parse("rsagent:1:2") == Owner(1, 2)
    assert Owner.parse("cilium") is None and Owner.parse(None) is None and Owner.parse("rsagent:x:2") is None
    assert not Owner(mine.pid, mine.start + 1).alive()  # a reused pid is another process


def test_state_files(tmp_path: Path) -> None:
    files = StateFiles(tmp_path / "net")
    dead = State(Owner(2**22 + 7, 1), {4026531840: {3: "eth0"}}, {4026531840: None})
    files.write(dead)
    alive = State(me())
    files.write(alive)
    assert oct(os.stat(tmp_path / "net").st_mode & 0o777) == "0o700"
    assert oct(os.stat(files.path_of(alive.owner)).st_mode & 0o777) == "0o600"
    found = list(files.dead())
    assert [s.owner for _, s in found] == [dead.owner] and found[0][1].qdiscs == {4026531840: {3: "eth0"}}
    files.remove(alive.owner)
    assert not files.path_of(alive.owner).exists()


def test_namespace_names_are_checked() -> None:
    with pytest.raises(NamespaceError, match="ip netns list"):
        resolve("no-such-namespace-rsagent")
    with pytest.raises(NamespaceError, match="does not exist"):
        resolve("/proc/0/ns/net")
    own = resolve("self")
    assert own.path is None and resolve("/proc/self/ns/net").inode == own.inode


# -- the hostname cache (connect.addr.hostname) ------------------------------------------

def test_hostname_cache_is_bounded_least_recently_used_first() -> None:
    from agent.net.hostnames import HostnameCache

    cache = HostnameCache(max_entries=3)
    for i in range(3):
        cache.learn(f"10.0.0.{i}", f"h{i}.example", 300, 0)
    assert cache.lookup("10.0.0.0", 1) == "h0.example"        # used: now the most recent
    cache.learn("10.0.0.9", "h9.example", 300, 2)              # evicts 10.0.0.1, the least recently used
    assert len(cache) == 3 and cache.stats.evicted == 1
    assert cache.lookup("10.0.0.1", 3) is None
    assert [cache.lookup(f"10.0.0.{i}", 3) for i in (0, 2, 9)] == ["h0.example", "h2.example", "h9.example"]
    for i in range(1000):
        cache.learn(f"10.1.{i // 256}.{i % 256}", "many.example", 300, 4)
    assert len(cache) == 3 and cache.stats.evicted == 1 + 1000
    assert cache.stats.learned == 1004 and cache.stats.hits == 4 and cache.stats.misses == 1


def test_hostname_cache_respects_ttls_with_a_floor() -> None:
    from agent.net.hostnames import NS, HostnameCache

    cache = HostnameCache(min_ttl=10)
    cache.learn("10.0.0.1", "long.example", 3600, 0)
    cache.learn("10.0.0.2", "zero.example", 0, 0)              # TTL 0: kept min_ttl
    cache.learn("fd00::1", "v6.example", 30, 0)
    assert cache.lookup("10.0.0.2", 9 * NS) == "zero.example"
    assert cache.lookup("10.0.0.2", 11 * NS) is None and cache.stats.expired == 1
    assert cache.lookup("fd00::1", 29 * NS) == "v6.example" and cache.lookup("fd00::1", 31 * NS) is None
    assert cache.lookup("10.0.0.1", 3599 * NS) == "long.example"
    # the last answer wins: a new name, a new TTL
    cache.learn("10.0.0.1", "other.example", 20, 3599 * NS)
    assert cache.lookup("10.0.0.1", 3610 * NS) == "other.example"
    assert cache.lookup("10.0.0.1", 3620 * NS) is None
    with pytest.raises(ValueError, match="at least one entry"):
        HostnameCache(max_entries=0)


def test_hostname_rules_hook_the_dns_classifier(tmp_path: Path) -> None:
    """A connect rule on connect.addr.hostname makes the agent hook dns
    (the responses its names come from); other connect rules do not."""
    from agent.cli import _needed_by_fields

    assert _needed_by_fields(_rules(tmp_path, 'connect.addr.hostname == "evil.example"',
                                    "connect.addr.port == 4444")) == {"dns"}
    assert _needed_by_fields(_rules(tmp_path, "connect.addr.port == 4444")) == set()


def test_the_responses_classifier_only_for_policies_that_show_hostnames(tmp_path: Path) -> None:
    """rs_tc_dns_response is loaded when a rule reads connect.addr.hostname
    or is a connect rule (its alerts carry the name), left out otherwise."""
    from agent.cli import _unneeded_programs

    assert _unneeded_programs(_rules(tmp_path, 'dns.question.name == "evil.example"')) == {"rs_tc_dns_response"}
    assert _unneeded_programs(_rules(tmp_path, 'dns.question.name == "evil.example"',
                                     "connect.addr.port == 4444")) == set()
    assert _unneeded_programs(_rules(tmp_path, 'connect.addr.hostname == "evil.example"')) == set()

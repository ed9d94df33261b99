"""Resolving network records (agent/events/decode.py: NetRecord for connect,
bind and accept, DnsRecord for dns) into event documents. Field names follow
the event-type table (codegen/eventtypes.py; the reference agent's SECL
names); docs/network.md says where each value comes from.

Addresses: an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``, what an AF_INET6
socket uses to reach an IPv4 peer) is reported as the IPv4 address it maps,
``family`` staying ``AF_INET6``: a rule written for ``169.254.169.254``
matches whichever socket family reached it (the kernel approvers do the
same). ``is_public`` is Python's ``ipaddress`` ``is_global`` (the IANA
special-purpose registries: private, loopback, link-local, shared (CGNAT),
documentation ranges... are not public).

DNS responses (records of direction ingress) make no document: their
answers go into the hostname cache (agent/net/hostnames.py), which names
the remote address of later connects (``connect.addr.hostname``).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from .decode import DnsRecord, Endpoint, NetRecord
from .layout import layout

if TYPE_CHECKING:
    from .resolve import Document, Resolver

_L = layout()
AF_INET = _L.const("RS_AF_INET")
AF_INET6 = _L.const("RS_AF_INET6")
RS_NET_FROM_USER = _L.const("RS_NET_FROM_USER")
RS_DNS_BY_SENDER = _L.const("RS_DNS_BY_SENDER")
RS_DNS_BY_OWNER = _L.const("RS_DNS_BY_OWNER")
RS_NET_INGRESS = _L.const("RS_NET_INGRESS")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address(family: int, raw: bytes) -> IPAddress | None:
    """The address of an endpoint (IPv4-mapped IPv6 as IPv4), or None."""
    if family == AF_INET:
        return ipaddress.IPv4Address(raw[:4])
    if family == AF_INET6:
        ip6 = ipaddress.IPv6Address(raw[:16])
        return ip6.ipv4_mapped or ip6
    return None


def endpoint_doc(ep: Endpoint, port: int | None = None) -> Document:
    """``{ip, port, family, is_public}`` (``port`` overrides the endpoint's
    own: accept's addr takes the local port)."""
    ip = address(ep.family, ep.addr)
    doc: Document = {"family": ep.family, "port": ep.port if port is None else port}
    if ip is not None:
        doc["ip"] = str(ip)
        doc["is_public"] = ip.is_global
    return doc


def attribution(flags: int) -> str:
    """How the kernel found a query's process (ebpf/hooks/dns.h)."""
    if flags & RS_DNS_BY_SENDER:
        return "sending_task"
    if flags & RS_DNS_BY_OWNER:
        return "socket_owner"
    return "none"


class NetResolver:
    def __init__(self, res: Resolver) -> None:
        self.res = res

    def net(self, e: NetRecord) -> Document:
        name = e.hdr.type
        doc = self.res.envelope(e.hdr, e.task)
        local, remote = endpoint_doc(e.local), endpoint_doc(e.remote)
        if name == "bind":
            addr = local
        elif name == "accept":
            # the reference agent's accept: the peer's address, the local port
            addr = endpoint_doc(e.remote, port=e.local.port)
        else:
            addr = remote
            if "ip" in addr:
                addr["hostname"] = self.res.env.hostnames.lookup(addr["ip"], e.hdr.timestamp) or ""
        body: Document = {"addr": addr, "retval": e.retval, "protocol": e.protocol,
                          "socket_type": e.sock_type, "fd": e.fd}
        if name == "connect":
            body["local"] = local
        elif name == "accept":
            body["local"] = local
            body["peer"] = remote
        if e.net_flags & RS_NET_FROM_USER:
            body["addr_source"] = "caller"  # a failed call: the caller's sockaddr
        doc[name] = body
        return doc

    def dns(self, e: DnsRecord) -> Document | None:
        env = self.res.env
        if e.direction == RS_NET_INGRESS:
            # a response: its addresses name later connects; not an event of its own
            for a in e.answers:
                ip = address(a.family, a.addr)
                if ip is not None:
                    env.hostnames.learn(str(ip), e.name, a.ttl, e.hdr.timestamp)
            return None
        if e.dns_flags & (RS_DNS_BY_SENDER | RS_DNS_BY_OWNER):
            doc = self.res.envelope(e.hdr, e.task)
        else:
            # no process could be named (docs/network.md)
            doc = {"type": "dns", "timestamp": env.clock.to_epoch(e.hdr.timestamp), "process": {"pid": 0}}
        doc["dns"] = {
            "id": e.id,
            "question": {"name": e.name, "type": e.qtype, "class": e.qclass,
                         "length": e.dns_len, "count": e.qdcount},
            "flags": e.flags,
            "attribution": attribution(e.dns_flags),
        }
        ifname = env.ifname(e.netns, e.ifindex) if env.ifname is not None else None
        doc["network"] = {
            "source": endpoint_doc(e.src),
            "destination": endpoint_doc(e.dst),
            "device": {"ifname": ifname or "", "ifindex": e.ifindex, "netns": e.netns},
            "l3_protocol": e.l3_protocol,
            "l4_protocol": e.l4_protocol,
            "network_direction": e.direction,
            "size": e.pkt_len,
        }
        return doc


__all__ = ["NetResolver", "address", "endpoint_doc", "attribution"]

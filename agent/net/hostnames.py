"""Addresses -> the name they were resolved from, learned from the DNS
responses the ingress classifier parses (ebpf/hooks/dns.h
rs_tc_dns_response), read to fill ``connect.addr.hostname``.

One entry per address: the question name of the last response that gave it
(an A or AAAA answer), kept until that answer's TTL runs out, at least
``min_ttl`` seconds (a connect made right after a TTL-0 answer still gets
the name). Time is the records' own (boot-time nanoseconds), so a response
and the connect after it in the ring buffer see the same clock whatever the
agent's delay. Bounded: past ``max_entries`` the least recently used entry
goes (counted). Not thread-safe: the event loop owns it. Apart from the
classifier so that it imports without pyroute2.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields

NS = 1_000_000_000


@dataclass
class HostnameStats:
    learned: int = 0           # answers put in (new entries and refreshed ones)
    hits: int = 0              # lookups that found a live name
    misses: int = 0            # lookups that found none
    expired: int = 0           # entries found past their TTL (dropped)
    evicted: int = 0           # entries dropped to stay within max_entries

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class HostnameCache:
    """See the module docstring."""

    def __init__(self, max_entries: int = 65536, min_ttl: float = 10.0) -> None:
        if max_entries < 1:
            raise ValueError(f"the hostname cache needs room for at least one entry, not {max_entries}")
        self.max_entries = max_entries
        self.min_ttl_ns = int(min_ttl * NS)
        self.stats = HostnameStats()
        # address (its text, IPv4-mapped IPv6 as IPv4) -> (name, expiry in boot ns)
        self._entries: OrderedDict[str, tuple[str, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def learn(self, address: str, name: str, ttl: int, now_ns: int) -> None:
        """``address`` was given for ``name`` with ``ttl`` seconds at ``now_ns``."""
        expiry = now_ns + max(ttl * NS, self.min_ttl_ns)
        entries = self._entries
        entries[address] = (name, expiry)
        entries.move_to_end(address)
        self.stats.learned += 1
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
            self.stats.evicted += 1

    def lookup(self, address: str, now_ns: int) -> str | None:
        """The live name of ``address`` at ``now_ns``, or None."""
        entry = self._entries.get(address)
        if entry is None:
            self.stats.misses += 1
            return None
        name, expiry = entry
        if now_ns > expiry:
            del self._entries[address]
            self.stats.expired += 1
            self.stats.misses += 1
            return None
        self._entries.move_to_end(address)
        self.stats.hits += 1
        return name


__all__ = ["HostnameCache", "HostnameStats"]

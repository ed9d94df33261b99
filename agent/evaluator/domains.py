"""``.root_domain`` (docs/secl.md "Helpers"): the registrable domain of a
DNS name, its public suffix plus one label (``www.example.co.uk`` ->
``example.co.uk``), as the reference agent computes it (Go's
``publicsuffix.EffectiveTLDPlusOne``: the whole Public Suffix List, ICANN
and private sections).

The list is the system's copy (Debian's ``publicsuffix`` package,
:data:`LIST_PATHS`), read once, when a rule first asks; the standard
algorithm of publicsuffix.org applies: the longest matching rule wins, an
exception rule (``!www.ck``) beats a wildcard (``*.ck``), and a name no rule
matches has its last label as public suffix. Without the list (not
installed) every name's last label is its public suffix (the
``.root_domain`` of ``a.b.co.uk`` is then ``co.uk``), and a warning says so
once. A name that is itself a public suffix (``co.uk``), empty or an IP
address has no root domain: ``""``.
"""
from __future__ import annotations

import functools
import ipaddress
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LIST_PATHS = (Path("/usr/share/publicsuffix/public_suffix_list.dat"),
              Path("/usr/share/publicsuffix/effective_tld_names.dat"))
MAX_LIST_BYTES = 16 << 20  # the list is about 300 KB


@dataclass(frozen=True)
class SuffixList:
    rules: frozenset[str]      # "co.uk"
    wildcards: frozenset[str]  # "*.ck" stored as "ck"
    exceptions: frozenset[str]  # "!www.ck" stored as "www.ck"

    @classmethod
    def parse(cls, text: str) -> SuffixList:
        rules: set[str] = set()
        wildcards: set[str] = set()
        exceptions: set[str] = set()
        for line in text.splitlines():
            rule = line.strip().split(None, 1)[0] if line.strip() else ""
            if not rule or rule.startswith("//"):
                continue
            rule = _idna(rule.lower())
            if rule.startswith("!"):
                exceptions.add(rule[1:])
            elif rule.startswith("*."):
                wildcards.add(rule[2:])
            else:
                rules.add(rule)
        return cls(frozenset(rules), frozenset(wildcards), frozenset(exceptions))

    def public_suffix(self, labels: list[str]) -> int:
        """How many of the last ``labels`` form the public suffix."""
        n = len(labels)
        for i in range(n):
            candidate = ".".join(labels[i:])
            if candidate in self.exceptions:
                return n - i - 1
            if candidate in self.rules or (i + 1 < n and ".".join(labels[i + 1 :]) in self.wildcards):
                return n - i
        return 1


_EMPTY = SuffixList(frozenset(), frozenset(), frozenset())
_LOCK = threading.Lock()
_LOADED: list[SuffixList] = []


def _idna(label: str) -> str:
    try:
        return label.encode("idna").decode("ascii") if not label.isascii() else label
    except UnicodeError:
        return label


def suffix_list() -> SuffixList:
    """The system's Public Suffix List, read once (empty when absent)."""
    if _LOADED:
        return _LOADED[0]
    with _LOCK:
        if not _LOADED:
            _LOADED.append(_read())
    return _LOADED[0]


def _read() -> SuffixList:
    for path in LIST_PATHS:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_LIST_BYTES + 1)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning(".root_domain: cannot read the public suffix list %s: %s", path, exc.strerror)
            continue
        if len(data) > MAX_LIST_BYTES:
            log.warning(".root_domain: %s is larger than %d MiB: not used", path, MAX_LIST_BYTES >> 20)
            continue
        return SuffixList.parse(data.decode("utf-8", "replace"))
    log.warning(".root_domain: no public suffix list (%s; Debian package 'publicsuffix'): the last label of "
                "a name is taken as its public suffix", LIST_PATHS[0])
    return _EMPTY


@functools.lru_cache(maxsize=4096)
def root_domain(name: str) -> str:
    """The registrable domain of ``name`` ("" when it has none)."""
    name = name.strip().rstrip(".").lower()
    if not name or ".." in name:
        return ""
    try:
        ipaddress.ip_address(name)
        return ""
    except ValueError:
        pass
    labels = [_idna(label) for label in name.split(".")]
    suffix = suffix_list().public_suffix(labels)
    if suffix >= len(labels):
        return ""
    return ".".join(labels[-suffix - 1 :])

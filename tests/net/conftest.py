"""Fixtures of the network tests: the lab (namespaces, veth pair, dnsmasq)
and the agent watching the client namespace. Both made and removed here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab import Lab, dns_lab
from nettrace import NetTracer


@pytest.fixture(scope="module")
def lab(built_objects: None) -> Iterator[Lab]:
    with dns_lab() as lab:
        yield lab


@pytest.fixture(scope="module")
def tracer(lab: Lab) -> Iterator[NetTracer]:
    t = NetTracer((lab.client_ns, lab.server_ns)).start()
    try:
        yield t
    finally:
        t.stop()

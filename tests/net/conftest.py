"""Fixtures of the network tests: the lab (namespaces, veth pair, dnsmasq)
and the agent watching the client namespace. Both made and removed here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab import Lab
from nettrace import NetTracer


@pytest.fixture(scope="module")
def lab(built_objects: None) -> Iterator[Lab]:
    lab = Lab().up()
    try:
        lab.start_dns()
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def tracer(lab: Lab) -> Iterator[NetTracer]:
    t = NetTracer((lab.client_ns, lab.server_ns)).start()
    try:
        yield t
    finally:
        t.stop()

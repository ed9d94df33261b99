"""``--metrics ADDR:PORT``: the metrics registry (agent/metrics.py) served
for Prometheus at ``http://ADDR:PORT/metrics``.

prometheus_client does the exposition format and the HTTP server; a custom
collector reads ``Registry.collect()`` at each scrape, so the endpoint is a
view of the one registry, never a second set of counters. A bare port
binds the loopback address only (``9464`` = ``127.0.0.1:9464``); give
``0.0.0.0:9464`` or ``[::]:9464`` to expose it.
"""

from __future__ import annotations

import platform
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .metrics import Registry

_ADDRESS = re.compile(r"^(?:(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]]+)):)?(?P<port>\d{1,5})$")


class MetricsAddressError(ValueError):
    """A --metrics value that is not [ADDR:]PORT."""


def parse_address(text: str) -> tuple[str, int]:
    m = _ADDRESS.match(text.strip())
    if not m or not 0 < int(m.group("port")) < 65536:
        raise MetricsAddressError(f"--metrics {text}: expected PORT or ADDR:PORT (e.g. 9464, 127.0.0.1:9464, [::1]:9464)")
    return m.group("v6") or m.group("host") or "127.0.0.1", int(m.group("port"))


class RegistryCollector(Collector):
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric, samples in self.registry.collect():
            family = CounterMetricFamily if metric.kind == "counter" else GaugeMetricFamily
            fam = family(metric.name, metric.help, labels=list(metric.labelnames))
            for labels, value in samples:
                fam.add_metric(list(labels), value)
            yield fam


def register_build_info(registry: Registry) -> None:
    try:
        ver = version("rsagent")
    except PackageNotFoundError:
        ver = "unknown"
    values = (ver, platform.python_version(), platform.release())
    registry.callback("build_info", "the agent's version, its Python and the kernel it runs on (always 1)", "gauge",
                      ["version", "python", "kernel"], lambda: [(values, 1)])


@dataclass
class MetricsServer:
    address: tuple[str, int]
    _server: WSGIServer
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve(registry: Registry, text: str) -> MetricsServer:
    """Start serving (a daemon thread); raises OSError when the port is taken."""
    host, port = parse_address(text)
    prom = CollectorRegistry(auto_describe=False)
    prom.register(RegistryCollector(registry))
    server, thread = start_http_server(port, host, registry=prom)
    return MetricsServer((host, server.server_address[1]), server, thread)

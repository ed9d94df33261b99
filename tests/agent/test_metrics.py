"""The metrics registry: owned and callback metrics, names, snapshots."""

from __future__ import annotations

import threading

import pytest

from agent.metrics import MetricError, Registry


def test_owned_counters_and_labels() -> None:
    reg = Registry()
    sent = reg.counter("events_sent_total", "records sent", ["type"])
    sent.labels("open").inc()
    sent.labels("open").inc(2)
    sent.labels("exec").inc()
    assert reg.value("events_sent_total", type="open") == 3
    assert reg.value("events_sent_total") == 4
    assert reg.snapshot() == {'rsagent_events_sent_total{type="open"}': 3,
                              'rsagent_events_sent_total{type="exec"}': 1}


def test_callback_metric_reads_its_source_at_collection() -> None:
    reg = Registry()
    source = {"open": 5}
    reg.callback("kernel_seen_total", "hook fired", "counter", ["type"], lambda: source.items())
    assert reg.value("kernel_seen_total", type="open") == 5
    source["open"] = 7
    assert reg.value("kernel_seen_total", type="open") == 7


def test_unlabelled_gauge() -> None:
    reg = Registry()
    g = reg.gauge("process_cache_entries", "entries")
    g.set(12)
    assert reg.value("process_cache_entries") == 12 and g.value == 12


def test_bad_registrations_are_refused() -> None:
    reg = Registry()
    reg.counter("a_total", "x")
    with pytest.raises(MetricError, match="registered twice"):
        reg.counter("a_total", "x")
    with pytest.raises(MetricError, match="invalid metric"):
        reg.counter("bad-name", "x")
    c = reg.counter("b_total", "x", ["type"])
    with pytest.raises(MetricError, match="expected labels"):
        c.labels("open", "extra")


def test_concurrent_child_creation_gives_one_series() -> None:
    reg = Registry()
    c = reg.counter("c_total", "x", ["k"])
    children = []

    def grab() -> None:
        children.append(c.labels("same"))

    threads = [threading.Thread(target=grab) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(ch) for ch in children}) == 1

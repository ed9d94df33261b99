"""One registry for every counter and gauge of a running agent.

Each component registers its metrics here under one name, with a help text
and label names; the Prometheus endpoint, the periodic counter log line and
the exit summary are all views of the same registry, so a number has one
source.

Two ways to register:

- an owned metric (``counter``/``gauge``): the component keeps the returned
  object (or a labelled child of it) and updates it; an update is one
  attribute increment, cheap enough for the per-event path;
- a callback (``callback``): the registry asks a function for the current
  values when it is read. For values that already live elsewhere (the
  kernel's per-CPU counters, the size of the process cache, a component's
  stats dataclass), so nothing is counted twice.

Reading (``collect``) is thread-safe with respect to updates in the sense
Prometheus needs: each value is read atomically (a Python int), values of
one collection are not a consistent snapshot of each other.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["counter", "gauge"]
LabelValues = tuple[str, ...]
# label values (a bare string for one label) and the value
Samples = Iterable[tuple["LabelValues | str", float]]

_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
PREFIX = "rsagent_"


class MetricError(ValueError):
    """A metric registered twice, or with an invalid name or labels."""


class Child:
    """One labelled series of an owned metric: ``inc``/``set``/``value``."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, n: float = 1) -> None:
        self.value += n

    def dec(self, n: float = 1) -> None:
        self.value -= n

    def set(self, v: float) -> None:
        self.value = v


@dataclass
class Metric:
    name: str
    help: str
    kind: Kind
    labelnames: tuple[str, ...] = ()
    _children: dict[LabelValues, Child] = field(default_factory=dict, repr=False)
    _fn: Callable[[], Samples] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def labels(self, *values: object) -> Child:
        """The series for these label values (created at first use)."""
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            if len(key) != len(self.labelnames):
                raise MetricError(f"{self.name}: expected labels {self.labelnames}, got {key}")
            with self._lock:
                child = self._children.setdefault(key, Child())
        return child

    # An unlabelled metric is its own single series.
    def inc(self, n: float = 1) -> None:
        self.labels().inc(n)

    def set(self, v: float) -> None:
        self.labels().set(v)

    @property
    def value(self) -> float:
        return self.labels().value

    def samples(self) -> list[tuple[LabelValues, float]]:
        if self._fn is not None:
            return [((labels,) if isinstance(labels, str) else tuple(str(v) for v in labels), float(value))
                    for labels, value in self._fn()]
        with self._lock:
            return [(k, c.value) for k, c in self._children.items()]


class Registry:
    """The metrics of one agent (one Runtime)."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._lock = threading.Lock()

    def _add(self, name: str, help: str, kind: Kind, labelnames: Iterable[str],
             fn: Callable[[], Samples] | None) -> Metric:
        full = name if name.startswith(PREFIX) else PREFIX + name
        labels = tuple(labelnames)
        if not _NAME_RE.match(full) or not all(_NAME_RE.match(label) for label in labels):
            raise MetricError(f"invalid metric or label name: {full} {labels}")
        with self._lock:
            if full in self._metrics:
                raise MetricError(f"metric {full} registered twice")
            metric = self._metrics[full] = Metric(full, help, kind, labels, _fn=fn)
        return metric

    def counter(self, name: str, help: str, labelnames: Iterable[str] = ()) -> Metric:
        """A monotonic count the caller increments."""
        return self._add(name, help, "counter", labelnames, None)

    def gauge(self, name: str, help: str, labelnames: Iterable[str] = ()) -> Metric:
        """A value the caller sets."""
        return self._add(name, help, "gauge", labelnames, None)

    def callback(self, name: str, help: str, kind: Kind, labelnames: Iterable[str],
                 fn: Callable[[], Samples]) -> Metric:
        """Values read from ``fn`` at collection: ``[(label values, value), ...]``."""
        return self._add(name, help, kind, labelnames, fn)

    def get(self, name: str) -> Metric:
        return self._metrics[name if name.startswith(PREFIX) else PREFIX + name]

    def __contains__(self, name: str) -> bool:
        return (name if name.startswith(PREFIX) else PREFIX + name) in self._metrics

    def __iter__(self) -> Iterator[Metric]:
        with self._lock:
            metrics = list(self._metrics.values())
        return iter(sorted(metrics, key=lambda m: m.name))

    def collect(self) -> list[tuple[Metric, list[tuple[LabelValues, float]]]]:
        return [(m, m.samples()) for m in self]

    def value(self, name: str, **labels: object) -> float:
        """One series' current value (0 when it has none yet): for tests and logs."""
        metric = self.get(name)
        want = tuple(str(labels[k]) for k in metric.labelnames) if labels else None
        total = 0.0
        for key, v in metric.samples():
            if want is None or key == want:
                total += v
        return total

    def snapshot(self) -> dict[str, float]:
        """Every series as ``name{label="value",...}`` -> value."""
        out: dict[str, float] = {}
        for metric, samples in self.collect():
            for key, v in samples:
                labels = ",".join(f'{n}="{lv}"' for n, lv in zip(metric.labelnames, key, strict=True))
                out[f"{metric.name}{{{labels}}}" if labels else metric.name] = v
        return out

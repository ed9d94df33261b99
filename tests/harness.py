"""Running the real probes inside the test process.

``Tracer`` starts the agent's Runtime (the same code `rsagent trace` runs)
in a background thread against the compiled objects in build/ebpf, and lets
a test collect the event documents produced while it performs real syscalls.
Nothing is mocked: documents come from the kernel through the ring buffer.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.evaluator.event import materialize

from agent.features import probe
from agent.hooksets import choose_hook_set
from agent.objects import object_path
from agent.runtime import BackgroundRun, Runtime, RuntimeConfig

Doc = dict[str, Any]
Predicate = Callable[[Doc], bool]


@dataclass
class Collection:
    """Documents seen while a ``Tracer.collect()`` block ran (and just after)."""

    docs: list[Doc] = field(default_factory=list)

    def matching(self, pred: Predicate) -> list[Doc]:
        return [d for d in self.docs if pred(d)]

    def of_type(self, event_type: str, pred: Predicate | None = None) -> list[Doc]:
        return [d for d in self.docs if d["type"] == event_type and (pred is None or pred(d))]

    def by_pid(self, pid: int, event_type: str | None = None) -> list[Doc]:
        return [
            d for d in self.docs
            if d["process"]["pid"] == pid and (event_type is None or d["type"] == event_type)
        ]


class Tracer:
    def __init__(self, event_types: set[str] | None = None, *, capture_env: bool = False,
                 process_cache_max: int | None = None, count_compat: bool = False) -> None:
        report = probe(object_path("features.bpf.o"))
        choice = choose_hook_set(report)
        assert choice.hook_set is not None, choice.reason
        self.hook_set = choice.hook_set
        self._queue: queue.SimpleQueue[Doc] = queue.SimpleQueue()
        self._collecting = threading.Event()
        self._markers: dict[str, threading.Event] = {}
        config = RuntimeConfig(
            probe_object=object_path("probe.bpf.o"),
            hook_set=choice.hook_set,
            event_types=event_types,
            handle_signals=False,
            poll_timeout_ms=20,
            # The probes run inside the test process: report its own syscalls
            # too, so tests can act with os.* calls directly.
            variables={"rs_agent_tgid": 0},
            capture_env=capture_env,
            count_compat=count_compat,
        )
        if process_cache_max is not None:
            config.process_cache_max = process_cache_max
        self.runtime = Runtime(config, self._consume)
        self._background = BackgroundRun(self.runtime, "tracer")

    def _consume(self, doc: Doc) -> None:
        if doc["type"] == "open":
            path = doc["open"]["file"].get("path", "")
            if path.startswith(_MARKER_PREFIX):
                waiter = self._markers.pop(path, None)
                if waiter is not None:
                    waiter.set()
        if self._collecting.is_set():
            self._queue.put(materialize(doc))

    def sync(self, timeout: float = 30.0) -> None:
        """Return once every event this process caused so far has been read
        from the ring buffer: open a unique missing path and wait for it.
        The marker is opened again (a new one) every half second: on a busy
        machine the ring buffer may overflow and lose it."""
        deadline = time.monotonic() + timeout
        while True:
            marker = _marker_path()
            done = threading.Event()
            self._markers[str(marker)] = done
            try:
                os.open(marker, os.O_RDONLY)
            except FileNotFoundError:
                pass
            left = deadline - time.monotonic()
            if done.wait(min(0.5, max(left, 0))):
                return
            self._markers.pop(str(marker), None)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the probes did not report the marker open within {timeout} s")

    def start(self) -> Tracer:
        self._background.start(30)
        return self

    def stop(self) -> None:
        self._background.stop(30)

    @contextmanager
    def collect(self, until: Predicate | None = None, timeout: float = 5.0,
                settle: float = 0.1) -> Iterator[Collection]:
        """Collect the documents caused during the block. Before it, wait for
        the pipeline to catch up with earlier activity; after it, wait until a
        document satisfies ``until`` (if given) and until the pipeline has
        caught up with the block, then ``settle`` seconds for other CPUs."""
        out = Collection()
        self.sync(timeout)
        self._drain()
        self._collecting.set()
        try:
            yield out
            deadline = time.monotonic() + timeout
            if until is not None:
                while not any(until(d) for d in self._take(out)):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no matching event within {timeout} s ({len(out.docs)} collected)")
                    time.sleep(0.02)
            self.sync(timeout)
            time.sleep(settle)
            self._take(out)
        finally:
            self._collecting.clear()

    def _take(self, out: Collection) -> list[Doc]:
        new = []
        while True:
            try:
                new.append(self._queue.get_nowait())
            except queue.Empty:
                out.docs.extend(new)
                return new

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return


_MARKER_PREFIX = "/nonexistent-rsagent-marker-"
_counter = 0


def _marker_path() -> Path:
    global _counter
    _counter += 1
    return Path(f"{_MARKER_PREFIX}{os.getpid()}-{_counter}")

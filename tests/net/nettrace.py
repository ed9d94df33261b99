"""The agent's Runtime inside the test process, watching network events:
the same code `rsagent trace --netns ...` runs, against the compiled objects
in build/ebpf. Documents come from the kernel through the ring buffer."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.evaluator.event import materialize
from agent.features import probe
from agent.hooksets import choose_hook_set
from agent.objects import object_path
from agent.runtime import BackgroundRun, Runtime, RunSummary, RuntimeConfig

Doc = dict[str, Any]
NET_TYPES = frozenset({"connect", "bind", "accept", "dns"})


class NetTracer:
    def __init__(self, netns: tuple[str, ...], event_types: frozenset[str] = NET_TYPES) -> None:
        choice = choose_hook_set(probe(object_path("features.bpf.o")))
        assert choice.hook_set is not None, choice.reason
        self.docs: list[Doc] = []
        self._lock = threading.Lock()
        config = RuntimeConfig(probe_object=object_path("probe.bpf.o"), hook_set=choice.hook_set,
                               event_types=set(event_types), handle_signals=False, poll_timeout_ms=20,
                               netns=netns, variables={"rs_agent_tgid": os.getpid()})
        self.runtime = Runtime(config, self._consume)
        self._background = BackgroundRun(self.runtime, "net-tracer")
        self.summary: RunSummary | None = None

    def _consume(self, doc: Doc) -> None:
        with self._lock:
            self.docs.append(materialize(doc))

    def start(self) -> NetTracer:
        self._background.start(60)
        return self

    def stop(self) -> RunSummary | None:
        self.summary = self._background.stop(60)
        return self.summary

    def matching(self, pred: Callable[[Doc], bool]) -> list[Doc]:
        with self._lock:
            return [d for d in self.docs if pred(d)]

    def wait_for(self, pred: Callable[[Doc], bool], timeout: float = 10.0, count: int = 1) -> list[Doc]:
        """At least ``count`` documents satisfying ``pred`` (after waiting)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(pred)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} expected document(s) within {timeout} s "
                                   f"({len(self.docs)} collected)")
            time.sleep(0.05)

    def dns_stats(self) -> dict[str, int]:
        return self.runtime.dns_stats()

"""`rsagent run`'s pipeline inside the test process: compiled objects for a
policy, approver maps, the rule engine and the discarder learner, on the
real kernel. Alerts are collected in memory."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from codegen.policy import load_policies

from agent.compiled import locate
from agent.discarders import DiscarderLearner
from agent.engine import Engine
from agent.features import probe
from agent.hooksets import choose_hook_set
from agent.kfilters import KernelFilters, invalidation_hooks
from agent.runtime import BackgroundRun, Runtime, RuntimeConfig


class ListSink:
    name = "list"

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def write(self, doc: dict[str, Any]) -> None:
        with self._lock:
            self.docs.append(doc)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class InProcessAgent:
    def __init__(self, policy: Path, cache: Path, *, discarders: bool = True) -> None:
        result = load_policies([policy])
        assert result.ok and not result.failed, [d.format() for d in result.problems()]
        self.ruleset = result.ruleset
        self.compiled = locate(result, cache=cache)
        hook_set = choose_hook_set(probe(self.compiled.features_object)).hook_set
        assert hook_set is not None
        self.sink = ListSink()
        self.engine = Engine(self.ruleset, [self.sink])
        types = (set(self.compiled.filters) | {"exec", "fork", "exit"}) & hook_set.supported_event_types()
        config = RuntimeConfig(probe_object=self.compiled.probe_object, hook_set=hook_set, event_types=types,
                               handle_signals=False, poll_timeout_ms=10, ringbuf_bytes=64 << 20,
                               variables={"rs_agent_tgid": os.getpid()},
                               hook_only_types=invalidation_hooks(self.compiled.filters) if discarders else set())
        self.runtime = Runtime(config, self.engine, prepare=self._prepare)
        self._discarders = discarders
        self._background = BackgroundRun(self.runtime, "agent")
        self.kernel_stats: dict[str, Any] = {}

    def _prepare(self, obj: Any) -> None:
        rt = self.runtime
        KernelFilters(obj, rt.layout, self.compiled.filters, rt.decoder.type_ids).load_approvers()
        if self._discarders:
            self.engine.learner = DiscarderLearner(obj, rt.layout, self.ruleset, self.compiled.filters,
                                                   rt.decoder.type_ids, rt.clock)

    def __enter__(self) -> InProcessAgent:
        self._background.start()
        return self

    def __exit__(self, *exc: object) -> None:
        summary = self._background.stop()
        if summary is not None:
            self.kernel_stats = summary.kernel

    @property
    def lost(self) -> int:
        return sum(t.lost for t in self.kernel_stats.values())

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.sink.docs)

"""Rules in the agent: evaluate each event against its type's rules, raise
alerts, apply actions, and learn discarders from what matched nothing.

Evaluation is lazy: the event document's expensive parts (ancestors, user
names...) are `Lazy` values resolved only when a rule reads them, at most
once per event; alerts show the whole document (resolved as it is serialized).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from codegen.actions import HashAction, KillAction, SetAction
from codegen.fields import ITER
from agent.evaluator.event import RESOLVED, DocumentEvent, materialize
from agent.evaluator.ruleset import Rule, Ruleset

from .hashing import Hasher, HashJob, HashWorker

from .discarders import DiscarderLearner
from .profile.anomaly import anomaly_document
from .metrics import Registry
from .sinks import Sink, Sinks

log = logging.getLogger(__name__)


@dataclass
class EngineStats:
    events: int = 0
    matched: int = 0
    alerts: int = 0
    throttled: int = 0
    kills: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)         # alerts per rule
    evaluated: Counter[str] = field(default_factory=Counter)       # expressions run, per rule
    matches: Counter[str] = field(default_factory=Counter)         # matches (before `every`), per rule
    throttled_by_rule: Counter[str] = field(default_factory=Counter)
    anomalies: Counter[tuple[str, str]] = field(default_factory=Counter)   # (profile id, kind) -> alerts

    def register(self, metrics: Registry) -> None:
        m = metrics
        m.callback("events_evaluated_total", "events evaluated against the rules", "counter", (),
                   lambda: [((), self.events)])
        m.callback("rule_evaluations_total", "rule expressions evaluated (the index skips the rules an event "
                   "cannot match)", "counter", ("rule",), lambda: list(self.evaluated.items()))
        m.callback("rule_matches_total", "events a rule matched", "counter", ("rule",),
                   lambda: list(self.matches.items()))
        m.callback("alerts_total", "alerts raised", "counter", ("rule",), lambda: list(self.by_rule.items()))
        m.callback("alerts_throttled_total", "matches not alerted because of the rule's `every`", "counter",
                   ("rule",), lambda: list(self.throttled_by_rule.items()))
        m.callback("profile_anomalies_total", "anomaly alerts of activity profiles (agent/profile)", "counter",
                   ("profile", "kind"), lambda: list(self.anomalies.items()))
        m.callback("kills_total", "processes killed by a rule's kill action", "counter", (),
                   lambda: [((), self.kills)])


class Engine:
    def __init__(self, ruleset: Ruleset, sinks: Sequence[Sink], *,
                 learner: DiscarderLearner | None = None,
                 self_pid: int | None = None,
                 kill: Callable[[int, int], None] = os.kill, metrics: Registry | None = None,
                 act: bool = True, hasher: Hasher | None = None) -> None:
        self._act = act  # False (`rulec replay`): actions are reported, not performed
        self._freed_before = 0  # process variables freed by the rulesets before this one (SIGHUP)
        self._ruleset = ruleset
        ruleset.variables.free_exited = act  # a replay's processes are not this host's
        self.sinks = list(sinks)
        # Sinks serializes the document itself, resolving its Lazy values as it
        # goes; any other sink (a list in tests) gets it materialized.
        self._materialize = not all(isinstance(s, Sinks) for s in self.sinks)
        self.learner = learner
        self.stats = EngineStats()
        if metrics is not None:
            self.stats.register(metrics)
            metrics.callback("variables_freed_total", "process variables freed because their process exited",
                             "counter", (), lambda: [((), self._freed_before + self._ruleset.variables.freed)])
        self._last_alert: dict[str, int] = {}
        self._self_pid = os.getpid() if self_pid is None else self_pid
        self._kill = kill
        # `hash` actions: alerts wait for their hashes in a worker thread, which then writes them
        self._hash_worker = HashWorker(hasher) if hasher is not None and act else None
        self._write_lock = threading.Lock()

    @property
    def ruleset(self) -> Ruleset:
        return self._ruleset

    @ruleset.setter
    def ruleset(self, ruleset: Ruleset) -> None:
        if ruleset is not self._ruleset:
            self._freed_before += self._ruleset.variables.freed
            ruleset.variables.free_exited = self._act
            self._ruleset = ruleset

    def __call__(self, doc: dict[str, Any]) -> None:
        self.stats.events += 1
        event = DocumentEvent(doc)
        matched = self.ruleset.matching(event, self.stats.evaluated)
        if not matched:
            if self.learner is not None:
                self.learner.learn(doc)
            return
        self.stats.matched += 1
        ts = doc["timestamp"]
        alerts = []
        read_hashes: list[tuple[tuple[Any, ...], list[str]]] = []
        for rule in matched:
            self.stats.matches[rule.id] += 1
            if rule.silent:  # its actions run (its `set`s already did), no alert
                self._actions(rule, doc)
                continue
            if not self._allow(rule, ts):
                self.stats.throttled += 1
                self.stats.throttled_by_rule[rule.id] += 1
                continue
            alert: dict[str, Any] = {"rule_id": rule.id, "rule_tags": dict(rule.tags), "timestamp": ts}
            if rule.description:
                alert["rule_description"] = rule.description
            if rule.anomaly is not None:
                alert["anomaly"] = anomaly_document(rule.anomaly, doc)
                self.stats.anomalies[(rule.anomaly["profile_id"], rule.anomaly["kind"])] += 1
            performed, files = self._actions(rule, doc)
            if performed:
                alert["actions"] = performed
            alerts.append((alert, files))
            read_hashes += [(f.path[:-1], event.cache[f.name]) for f in rule.hash_fields if event.cache.get(f.name)]
        if not alerts:
            return
        if self._materialize or read_hashes or any(files for _, files in alerts):
            materialize(doc)  # a hash job's alert is serialized in the worker's thread: nothing lazy left
        for path, hashes in read_hashes:  # the digests a rule read to decide: shown in its event
            obj = _file_object(doc, path)
            if obj is not None:
                obj["hashes"] = list(hashes)
        for alert, files in alerts:
            alert["event"] = doc
            self.stats.alerts += 1
            self.stats.by_rule[alert["rule_id"]] += 1
            if files:
                self._hash(alert, files, doc)
            else:
                self._deliver(alert)

    def _deliver(self, alert: dict[str, Any]) -> None:
        with self._write_lock:  # the event loop and the hash worker both write
            for sink in self.sinks:
                sink.write(alert)

    def _hash(self, alert: dict[str, Any], files: list[tuple[tuple[Any, ...], dict[str, Any]]],
              doc: dict[str, Any]) -> None:
        """Queue the alert's files to the hash worker (the alert is written once they are hashed)."""
        pid = doc.get("process", {}).get("pid", 0)
        jobs = []
        for path, report in files:
            obj = _file_object(doc, path)
            if obj is None:
                report.update({"status": "error", "reason": "the event has no such file"})
            else:
                jobs.append((obj, report, pid if isinstance(pid, int) else 0))
        worker = self._hash_worker
        if not jobs or worker is None:
            self._deliver(alert)
            return
        if not worker.submit(HashJob(alert, jobs, self._deliver)):
            for _, report, _ in jobs:
                report.update({"status": "rate_limited", "reason": "too many hash actions waiting"})
            worker.hasher.counts["rate_limited"] += len(jobs)
            self._deliver(alert)

    def close(self) -> None:
        """Let the hash worker finish (bounded); alerts still waiting go out without hashes."""
        if self._hash_worker is None:
            return
        for job in self._hash_worker.close():
            for _, report, _ in job.files:
                report.setdefault("status", "not computed (the agent stopped)")
            self._deliver(job.alert)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _allow(self, rule: Rule, ts: int) -> bool:
        if not rule.every:
            return True
        last = self._last_alert.get(rule.id)
        if last is not None and ts - last < rule.every:
            return False
        self._last_alert[rule.id] = ts
        return True

    def _actions(self, rule: Rule, doc: dict[str, Any]
                 ) -> tuple[list[dict[str, Any]], list[tuple[tuple[Any, ...], dict[str, Any]]]]:
        """The actions' reports, and the files (document path, report) to hash."""
        done: list[dict[str, Any]] = []
        files: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        event = DocumentEvent(doc)
        for action in rule.actions:
            if isinstance(action, SetAction) or (action.guard is not None and not action.guard(event)):
                continue  # sets ran in the ruleset; a guarded action whose filter fails is skipped
            if isinstance(action, KillAction):
                done.append({"kill": self._do_kill(action, doc)})
            elif isinstance(action, HashAction):
                kind = doc.get("type")
                field = action.field.name if action.field is not None else f"{kind}.file.path"
                report: dict[str, Any] = {"field": field}
                done.append({"hash": report})
                path = action.field.path[:-1] if action.field is not None else (kind, "file")
                if not self._act:
                    report["status"] = "not computed (replay)"
                elif self._hash_worker is None:
                    report["status"] = "not computed (no hasher)"
                elif ITER in path:
                    report["status"] = "error"
                    report["reason"] = f"'{field}' names no single file"
                else:
                    files.append((path, report))
        return done, files

    def _do_kill(self, action: KillAction, doc: dict[str, Any]) -> dict[str, Any]:
        pid = int(doc.get("process", {}).get("pid", 0))
        result: dict[str, Any] = {"signal": action.signal, "scope": action.scope, "pid": pid}
        if not self._act:
            result["status"] = "not performed (replay)"
            return result
        if action.scope != "process":
            result["status"] = "unsupported scope"
            return result
        if pid <= 1 or pid == self._self_pid:
            result["status"] = "refused (pid 1 or the agent itself)"
            return result
        try:
            self._kill(pid, action.signal_number)
        except ProcessLookupError:
            result["status"] = "process already gone"
        except PermissionError as exc:
            result["status"] = f"failed: {exc.strerror}"
        else:
            self.stats.kills += 1
            result["status"] = "performed"
        return result


def _file_object(doc: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any] | None:
    """The file object at ``path`` in a materialized document (``("exec", "file")``),
    made this document's own on the way (a process image's parts are shared by
    every document showing it, and immutable: the hash worker writes into it)."""
    node: Any = doc
    for key in path:
        if isinstance(key, int):
            item = node[key] if isinstance(node, list) and -len(node) <= key < len(node) else None
        else:
            item = node.get(key) if isinstance(node, dict) else None
        if item is None:
            return None
        if item.__class__ in RESOLVED:
            item = dict(item) if isinstance(item, dict) else list(item)
            node[key] = item
        node = item
    return node if isinstance(node, dict) else None

"""Rules in the agent: evaluate each event against its type's rules, raise
alerts, apply actions, and learn discarders from what matched nothing.

Evaluation is lazy: the event document's expensive parts (ancestors, user
names...) are `Lazy` values resolved only when a rule reads them, at most
once per event; alerts show the whole document (resolved as it is serialized).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from codegen.actions import HashAction, KillAction, SetAction
from agent.evaluator.event import DocumentEvent, materialize
from agent.evaluator.ruleset import Rule, Ruleset

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
                 act: bool = True) -> None:
        self.ruleset = ruleset
        self.sinks = list(sinks)
        # Sinks serializes the document itself, resolving its Lazy values as it
        # goes; any other sink (a list in tests) gets it materialized.
        self._materialize = not all(isinstance(s, Sinks) for s in self.sinks)
        self.learner = learner
        self.stats = EngineStats()
        if metrics is not None:
            self.stats.register(metrics)
        self._last_alert: dict[str, int] = {}
        self._self_pid = os.getpid() if self_pid is None else self_pid
        self._kill = kill
        self._act = act  # False (`rulec replay`): actions are reported, not performed

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
            performed = self._actions(rule, doc)
            if performed:
                alert["actions"] = performed
            alerts.append(alert)
        if not alerts:
            return
        if self._materialize:
            materialize(doc)
        for alert in alerts:
            alert["event"] = doc
            self.stats.alerts += 1
            self.stats.by_rule[alert["rule_id"]] += 1
            for sink in self.sinks:
                sink.write(alert)

    def _allow(self, rule: Rule, ts: int) -> bool:
        if not rule.every:
            return True
        last = self._last_alert.get(rule.id)
        if last is not None and ts - last < rule.every:
            return False
        self._last_alert[rule.id] = ts
        return True

    def _actions(self, rule: Rule, doc: dict[str, Any]) -> list[dict[str, Any]]:
        done: list[dict[str, Any]] = []
        event = DocumentEvent(doc)
        for action in rule.actions:
            if isinstance(action, SetAction) or (action.guard is not None and not action.guard(event)):
                continue  # sets ran in the ruleset; a guarded action whose filter fails is skipped
            if isinstance(action, KillAction):
                done.append({"kill": self._do_kill(action, doc)})
            elif isinstance(action, HashAction):
                field = action.field.name if action.field is not None else f"{doc.get('type')}.file.path"
                done.append({"hash": {"field": field, "status": "not computed (not implemented yet)"}})
        return done

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

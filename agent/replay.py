"""Replaying a capture (agent/capture.py) against policies, offline: `rulec replay`.

Each event document of the capture goes, in order, through the same rule
engine the agent runs (agent/engine.py: `every`, variables, actions), one
engine per policy; actions are reported, never performed. With a baseline
policy, both engines see each event in lockstep, so the alerts one raised
and the other did not are known per event (new and vanished alerts, with
example events), as well as the per-rule counts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from .capture import CaptureReader, filters_note
from .engine import Engine

EXAMPLES = 3   # example events per rule for new and vanished alerts


class CollectingSink:
    """A sink that keeps the alerts written to it (replay: the engine's only sink)."""

    name = "replay"

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def write(self, doc: dict[str, Any]) -> None:
        self.alerts.append(doc)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class PolicyReplay:
    label: str              # the policy files, for the report
    ruleset: Any            # agent.evaluator.ruleset.Ruleset
    engine: Engine = field(init=False)
    sink: CollectingSink = field(default_factory=CollectingSink)
    actions: Counter[str] = field(default_factory=Counter)   # "rule: kill SIGKILL" -> times
    times: dict[str, list[int]] = field(default_factory=dict)   # rule -> its alerts' timestamps (the report)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # rule -> its first alerts

    def __post_init__(self) -> None:
        self.engine = Engine(self.ruleset, [self.sink], act=False)

    def run(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        self.sink.alerts = []
        self.engine(doc)
        for alert in self.sink.alerts:
            rule = alert["rule_id"]
            self.times.setdefault(rule, []).append(alert["timestamp"])
            kept = self.samples.setdefault(rule, [])
            if len(kept) < EXAMPLES:
                kept.append(alert)
            for action in alert.get("actions", ()):
                for kind, detail in action.items():
                    self.actions[f"{alert['rule_id']}: {kind} {detail.get('signal', '')}".rstrip()] += 1
        return self.sink.alerts

    def rules(self) -> dict[str, dict[str, int]]:
        st = self.engine.stats
        return {r.id: {"alerts": st.by_rule[r.id], "matches": st.matches[r.id],
                       "throttled": st.throttled_by_rule[r.id]} for r in self.ruleset.rules}


@dataclass
class Diff:
    new: Counter[str] = field(default_factory=Counter)        # rule -> alerts only the policy raised
    vanished: Counter[str] = field(default_factory=Counter)   # rule -> alerts only the baseline raised
    new_examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    vanished_examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, seq: int, doc: dict[str, Any], policy: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> None:
        mine = Counter(a["rule_id"] for a in policy)
        theirs = Counter(a["rule_id"] for a in baseline)
        for rule, n in (mine - theirs).items():
            self.new[rule] += n
            _example(self.new_examples, rule, seq, doc)
        for rule, n in (theirs - mine).items():
            self.vanished[rule] += n
            _example(self.vanished_examples, rule, seq, doc)


def _example(into: dict[str, list[dict[str, Any]]], rule: str, seq: int, doc: dict[str, Any]) -> None:
    examples = into.setdefault(rule, [])
    if len(examples) < EXAMPLES:
        examples.append({"event": seq, "summary": describe(doc), "document": doc})


def describe(doc: dict[str, Any]) -> str:
    """One line about an event: its type, what it was about, who did it."""
    kind = str(doc.get("type", "?"))
    body: dict[str, Any] = _dict(doc.get(kind))
    proc: dict[str, Any] = _dict(doc.get("process"))
    what = ""
    if isinstance(body.get("file"), dict):
        what = str(body["file"].get("path", ""))
    elif isinstance(body.get("addr"), dict):
        what = f"{body['addr'].get('ip', '')}:{body['addr'].get('port', '')}"
    elif isinstance(body.get("question"), dict):
        what = str(body["question"].get("name", ""))
    elif kind == "exec" and isinstance(proc.get("file"), dict):
        what = str(proc["file"].get("path", ""))
    exe = proc.get("file", {}).get("path", "") if isinstance(proc.get("file"), dict) else ""
    return f"{kind} {what} by {proc.get('comm', '?')} (pid {proc.get('pid', '?')}, {exe or '?'})".replace("  ", " ")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class ReplayResult:
    capture: dict[str, Any]
    policy: PolicyReplay
    baseline: PolicyReplay | None
    diff: Diff | None
    events: int
    problems: list[str]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"capture": self.capture, "events": self.events, "problems": self.problems,
                               "policy": _policy_dict(self.policy)}
        if self.baseline is not None and self.diff is not None:
            out["baseline"] = _policy_dict(self.baseline)
            ours, theirs = self.policy.rules(), self.baseline.rules()
            out["diff"] = {
                "rules": {r: {"policy": ours.get(r, {}).get("alerts", 0), "baseline": theirs.get(r, {}).get("alerts", 0),
                              "change": ours.get(r, {}).get("alerts", 0) - theirs.get(r, {}).get("alerts", 0),
                              "only_in": "policy" if r not in theirs else "baseline" if r not in ours else None}
                          for r in sorted(set(ours) | set(theirs))},
                "new": {"total": sum(self.diff.new.values()), "by_rule": dict(self.diff.new),
                        "examples": self.diff.new_examples},
                "vanished": {"total": sum(self.diff.vanished.values()), "by_rule": dict(self.diff.vanished),
                             "examples": self.diff.vanished_examples},
            }
        return out


def _policy_dict(p: PolicyReplay) -> dict[str, Any]:
    st = p.engine.stats
    return {"files": p.label, "alerts": st.alerts, "matched_events": st.matched, "throttled": st.throttled,
            "rules": p.rules(), "actions_not_performed": dict(p.actions)}


def replay(reader: CaptureReader, policy: PolicyReplay, baseline: PolicyReplay | None = None,
           on_alert: Callable[[dict[str, Any]], None] | None = None) -> ReplayResult:
    """Every event of ``reader`` through ``policy`` (and ``baseline``);
    ``on_alert`` gets each of the policy's alerts, as the agent writes it."""
    diff = Diff() if baseline is not None else None
    seq = -1
    for seq, doc in enumerate(reader.events()):
        alerts = policy.run(doc)
        if on_alert is not None:
            for alert in alerts:
                on_alert(alert)
        if baseline is not None and diff is not None:
            diff.add(seq, doc, alerts, baseline.run(doc))
    return ReplayResult(capture_info(reader), policy, baseline, diff, seq + 1,
                        _missing_types(reader, policy) + list(reader.problems))


def _missing_types(reader: CaptureReader, policy: PolicyReplay) -> list[str]:
    recorded = reader.header.get("event_types")
    if not isinstance(recorded, list):
        return []
    missing = sorted(set(policy.ruleset.event_types) - set(recorded))
    if not missing:
        return []
    return [f"the capture has no {', '.join(missing)} events (it was recorded with the event types "
            f"{', '.join(recorded)}): rules on them cannot fire here; record with `rsagent record` (no --policy)"]


def capture_info(reader: CaptureReader) -> dict[str, Any]:
    h, t = reader.header, reader.trailer or {}
    return {
        "path": str(reader.path), "version": h.get("version"), "agent_version": h.get("agent_version"),
        "command": h.get("command"), "host": h.get("host"), "hook_set": h.get("hook_set"),
        "event_types": h.get("event_types"), "started": h.get("started"), "ended": t.get("ended"),
        "first_event": t.get("first_event"), "last_event": t.get("last_event"),
        "complete": reader.trailer is not None, "not_recorded": t.get("not_recorded", 0),
        "size_limit_reached": t.get("full", False), "filters": h.get("filters"),
        "filter_changes": [{k: f.get(k) for k in ("t", "event_index", "generation", "hook_set", "event_types",
                                                  "filters")}
                           for f in reader.filter_changes],
        "kernel": reader.counters,
    }


# --- text report ---------------------------------------------------------------------

def _when(ns: Any) -> str:
    import datetime

    if not isinstance(ns, int):
        return "?"
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write_text(result: ReplayResult, out: TextIO) -> None:
    c = result.capture
    host = c.get("host") or {}
    start, end = c.get("first_event") or c.get("started"), c.get("last_event") or c.get("ended")
    span = f" ({(end - start) / 1e9:.1f} s)" if isinstance(start, int) and isinstance(end, int) else ""
    print(f"capture {c['path']}: {result.events} events, {_when(start)} .. {_when(end)}{span}; host "
          f"{host.get('hostname', '?')}, kernel {host.get('kernel', '?')}, hook set {c.get('hook_set')}, "
          f"rsagent {c.get('agent_version')}", file=out)
    print(f"  in-kernel filters while recording: {filters_note(c.get('filters'))}", file=out)
    for f in c.get("filter_changes") or ():
        print(f"  from {_when(f.get('t'))}, event #{f.get('event_index')} (generation {f.get('generation')}, "
              f"hook set {f.get('hook_set')}): "
              f"in-kernel filters {filters_note(f.get('filters'))}", file=out)
        types = f.get("filters", {}).get("types") if isinstance(f.get("filters"), dict) else None
        for t, summary in sorted((types or {}).items()):
            print(f"    {t}: {summary}", file=out)
    kernel = c.get("kernel") or {}
    lost = sum(v.get("lost", 0) for v in kernel.values())
    if lost:
        print(f"  warning: {lost} events were lost in the kernel while recording (ring buffer full): "
              "the live agent did not see them either", file=out)
    if c.get("not_recorded"):
        print(f"  warning: {c['not_recorded']} events came after the size limit and are not in the capture",
              file=out)
    for problem in result.problems:
        print(f"  warning: {problem}", file=out)
    _policy_text(result.policy, "policy", out)
    if result.baseline is None or result.diff is None:
        return
    _policy_text(result.baseline, "baseline", out)
    ours, theirs = result.policy.rules(), result.baseline.rules()
    rules = sorted(set(ours) | set(theirs))
    changed = [r for r in rules if ours.get(r, {}).get("alerts", 0) != theirs.get(r, {}).get("alerts", 0)
               or (r in ours) != (r in theirs)]
    print(f"diff (policy vs baseline): {len(changed)} rule(s) fire differently", file=out)
    width = max((len(r) for r in changed), default=4)
    for r in changed:
        a, b = ours.get(r, {}).get("alerts", 0), theirs.get(r, {}).get("alerts", 0)
        note = " (new rule)" if r not in theirs else " (removed rule)" if r not in ours else ""
        verb = "more" if a > b else "fewer" if a < b else "same"
        print(f"  {r:<{width}}  {b:>6} -> {a:<6} {a - b:+d} {verb}{note}", file=out)
    d = result.diff
    for title, counts, examples in (("new alerts", d.new, d.new_examples),
                                    ("vanished alerts", d.vanished, d.vanished_examples)):
        print(f"{title}: {sum(counts.values())}", file=out)
        for rule, n in sorted(counts.items()):
            print(f"  {rule}: {n}", file=out)
            for ex in examples.get(rule, ()):
                print(f"    e.g. event #{ex['event']}: {ex['summary']}", file=out)


def _policy_text(p: PolicyReplay, role: str, out: TextIO) -> None:
    st = p.engine.stats
    print(f"{role} {p.label}: {len(p.ruleset.rules)} rule(s), {st.alerts} alert(s) on {st.matched} matching "
          f"event(s){f', {st.throttled} throttled by `every`' if st.throttled else ''}", file=out)
    rules = p.rules()
    width = max((len(r) for r in rules), default=4)
    for r, counts in rules.items():
        extra = f"  ({counts['matches']} matches, {counts['throttled']} throttled)" if counts["throttled"] else ""
        print(f"  {r:<{width}}  {counts['alerts']:>6}{extra}", file=out)
    for action, n in sorted(p.actions.items()):
        print(f"  action not performed (replay): {action} x{n}", file=out)


def write_json(result: ReplayResult, out: TextIO) -> None:
    json.dump(result.as_dict(), out, indent=2, ensure_ascii=True)
    out.write("\n")

"""The attack-scenario suite and the benign workload, against `rsagent run`
with the bundled default policy (rules/).

One agent for the module. Each scenario runs real attacker actions on this
machine (detection_scenarios.py), then waits for every rule it must raise,
attributed to the processes it started; after a barrier, no rule outside
its expected and tolerated ones may have fired for them. The benign workload
(detection_benign.py) must raise nothing at all.

`make test` runs the quick scenarios and the cheap benign workload; `make
test-detection` runs everything (it installs the daemons and tools the
other scenarios need). The counts are written to build/detection/summary.json
and printed at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from detection_agent import ALERT_TIMEOUT, ROOT, SUMMARY_KEY, Alert, DetectionAgent, from_origins, iter_rules, lost_events
from detection_benign import daemons, workload
from detection_context import Context, context
from detection_scenarios import SCENARIOS, Scenario

from agent.hooksets import tracefs_has
from codegen.eventtypes import BY_NAME

pytestmark = pytest.mark.root

RESULTS: dict[str, dict[str, Any]] = {}
SUMMARY = ROOT / "build" / "detection" / "summary.json"


@pytest.fixture(scope="module")
def agent(built_objects: None, tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[DetectionAgent]:
    run = DetectionAgent(tmp_path_factory.mktemp("detection")).start()
    try:
        yield run
    finally:
        stderr = run.stop()
        _summarize(request, lost_events(stderr))


def _summarize(request: pytest.FixtureRequest, lost: dict[str, int]) -> None:
    scenarios = {k: v for k, v in RESULTS.items() if v["kind"] == "scenario"}
    detected = [v for v in scenarios.values() if v["detected"]]
    summary: dict[str, Any] = {
        "scenarios": len(scenarios),
        "detected": len(detected),
        "techniques": sorted({v["technique"] for v in detected}),
        "tactics": sorted({v["tactic"] for v in detected}),
        "benign_alerts": sum(len(v["alerts"]) for v in RESULTS.values() if v["kind"] == "benign"),
        "benign_runs": sorted(k for k, v in RESULTS.items() if v["kind"] == "benign"),
        "lost_events": lost,
        "results": RESULTS,
    }
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    if RESULTS:
        request.config.stash[SUMMARY_KEY] = (
            f"detection: {summary['detected']}/{summary['scenarios']} scenarios detected, "
            f"{len(summary['techniques'])} techniques, {len(summary['tactics'])} tactics; "
            f"benign alerts: {summary['benign_alerts']} ({', '.join(summary['benign_runs']) or 'no benign run'}); "
            f"lost events: {lost or 'none'} ({SUMMARY.relative_to(ROOT)})")


def _mine(agent: DetectionAgent, ctx: Context, start: int) -> list[Alert]:
    agent.barrier()
    return [a for a in agent.log.since(start) if from_origins(a, ctx.origins)]


def _describe(alerts: list[Alert]) -> str:
    out = []
    for a in alerts:
        ev = a["event"]
        proc = ev.get("process", {})
        obj = ev.get(ev["type"], {})
        what = (obj.get("file") or {}).get("path") or obj.get("argv") or obj.get("mountpoint", {}).get("path")
        out.append(f"{a['rule_id']} ({ev['type']} by {proc.get('file', {}).get('path')} {proc.get('argv')}: {what})")
    return "; ".join(out) or "none"


ATTEMPTS = 3  # a scenario is run again only when the kernel lost events while it ran


def _attempt(agent: DetectionAgent, sc: Scenario) -> tuple[list[str], list[Alert], int]:
    """Run the scenario once: the rules it missed, its alerts, the events lost meanwhile."""
    lost = agent.lost()
    start = len(agent.log.since(0))
    missing: list[str] = []
    with context(sc.name) as ctx:
        sc.run(ctx)
        for rule in sc.rules:
            found = agent.log.wait(lambda a, r=rule: a["rule_id"] == r and from_origins(a, ctx.origins),  # type: ignore[misc]
                                   start, ALERT_TIMEOUT)
            if found is None:
                missing.append(rule)
        mine = _mine(agent, ctx, start)
    return missing, mine, agent.lost() - lost


@pytest.mark.parametrize("sc", [pytest.param(s, id=s.name, marks=() if s.quick else (pytest.mark.slow,))
                                for s in SCENARIOS])
def test_scenario(agent: DetectionAgent, sc: Scenario) -> None:
    absent = [tp for t in sc.types for tp in BY_NAME[t].lacking_tracepoints(tracefs_has)]
    if absent:  # a kernel built without the feature (modules): the kernel matrix has them
        pytest.skip(f"{sc.name} needs {', '.join(sc.types)}: this kernel has no tracepoint {', '.join(absent)}")
    attempts = 0
    while True:
        attempts += 1
        missing, mine, lost = _attempt(agent, sc)
        if not missing or not lost or attempts == ATTEMPTS:
            break
    raised = set(iter_rules(mine))
    unexpected = sorted(raised - set(sc.rules) - set(sc.tolerated))
    RESULTS[sc.name] = {"kind": "scenario", "technique": sc.technique, "tactic": sc.tactic,
                        "detected": not missing, "raised": sorted(raised), "unexpected": unexpected,
                        "attempts": attempts}
    assert not missing, (f"{sc.name} ({sc.doc}): {missing} not raised within {ALERT_TIMEOUT} s "
                         f"({lost} events lost meanwhile); raised: {_describe(mine)}")
    assert not unexpected, f"{sc.name} ({sc.doc}) also raised {unexpected}: {_describe(mine)}"


def _benign(agent: DetectionAgent, name: str, run: Any) -> None:
    start = len(agent.log.since(0))
    with context(name) as ctx:
        run(ctx)
        mine = _mine(agent, ctx, start)
    RESULTS[name] = {"kind": "benign", "alerts": [a["rule_id"] for a in mine]}
    assert not mine, f"the benign workload raised: {_describe(mine)}"


def test_benign_workload_raises_nothing(agent: DetectionAgent) -> None:
    """dpkg -i/--purge of a local .deb, compileall, git, a C program built and
    run in /tmp, tar, cp -r, ps, systemctl status, sed -i in a project."""
    _benign(agent, "benign_workload", workload)


@pytest.mark.slow
def test_benign_daemons_raise_nothing(agent: DetectionAgent) -> None:
    """sshd accepting a key login, cron running a job, lighttpd serving a page and a CGI."""
    _benign(agent, "benign_daemons", daemons)


"""In-kernel filters: what `rsagent run` costs on files no rule covers, and
how many events/s the whole pipeline handles when every event matches.

    .venv/bin/python -m bench.bench_filters [--iterations N] [--rounds R] [--no-auditd]
        [--baseline-discard DIR]

Overhead on an open()+close() loop of a file no rule covers (C,
bench/c/openloop.c), alternating configurations each round, medians:
  none      no agent
  floor     empty programs on sys_enter and sys_exit of the open syscalls
  approve   rsagent run, 20 rules on other paths, all approvable (basenames)
  discard   rsagent run, 20 glob rules with '*' basenames: no approver, the
            first open teaches the kernel a discarder
  auditd    auditd with one `-w /etc/shadow -p rwa` watch (never matching)
  discard@base  (--baseline-discard DIR) the discard policy with the objects
            `rulec compile` built into DIR from other sources (a baseline
            checkout): before/after of a kernel change, side by side
Targets (issue 6): approve overhead <= 1.5x the floor's, discard <= 2x.

Pipeline capacity: the probes fill a large ring buffer while nobody reads,
then the agent's consumer drains it, timed (zero loss by construction):
every event raising an alert (written as JSON to /dev/null), and every event
evaluated without a match.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from agent.libbpf import load_object

from .common import (WORK, build_bpf, build_c, median, pct, require_root, run_loop, start_rsagent,
                     stop_rsagent)


def write_policies() -> dict[str, Path]:
    approve = ["rules:"] + [
        f"  - id: watch_{i}\n    expression: open.file.path == \"/etc/rsagent-bench/secret-{i}\""
        for i in range(20)]
    discard = ["rules:"] + [
        f"  - id: glob_{i}\n    expression: open.file.path =~ \"/etc/rsagent-bench/app{i}/*.conf\""
        for i in range(20)]
    match_all = ["rules:", '  - id: every_open\n    expression: open.file.path == "%s"' % (WORK / "hot-file")]
    # Sent by the kernel (the basename is approved), evaluated, no alert.
    evaluate_only = ["rules:", '  - id: other_comm\n    expression: open.file.path == "%s" && process.comm == "no-such-comm"'
                     % (WORK / "hot-file")]
    out = {}
    for name, lines in (("approve", approve), ("discard", discard), ("pipeline", match_all),
                        ("pipeline-nomatch", evaluate_only)):
        path = WORK / f"{name}.policy"
        path.write_text("\n".join(lines) + "\n")
        out[name] = path
    return out


class Auditd:
    """auditd with one never-matching watch, for comparison (installed on demand)."""

    def __init__(self) -> None:
        if not shutil.which("auditd"):
            print("installing auditd (apt) for the comparison...", file=sys.stderr)
            subprocess.run(["apt-get", "install", "-y", "-qq", "auditd"], check=True,
                           stdout=subprocess.DEVNULL)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Auditd:
        self.proc = subprocess.Popen(["auditd", "-n"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        subprocess.run(["auditctl", "-D"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["auditctl", "-w", "/etc/shadow", "-p", "rwa"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["auditctl", "-e", "1"], check=True, stdout=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["auditctl", "-D"], stdout=subprocess.DEVNULL)
        subprocess.run(["auditctl", "-e", "0"], stdout=subprocess.DEVNULL)
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def overhead(iterations: int, rounds: int, with_auditd: bool, baseline: Path | None = None) -> None:
    loop = build_c("openloop")
    floor = build_bpf("empty_open_enter_exit")
    target = WORK / "uncovered-file"
    target.write_text("x")
    policies = write_policies()
    ready = WORK / "run.ready"
    runs = {"approve": ["--policy", str(policies["approve"])], "discard": ["--policy", str(policies["discard"])]}
    if baseline is not None:
        runs["discard@base"] = ["--policy", str(policies["discard"]), "--compiled", str(baseline)]
    configs = ["none", "floor", *runs] + (["auditd"] if with_auditd else [])
    res: dict[str, list[float]] = {c: [] for c in configs}
    notes: list[str] = []
    for _ in range(rounds):
        res["none"].append(run_loop(loop, target, iterations))
        with load_object(floor, attach=True):
            res["floor"].append(run_loop(loop, target, iterations))
        for name, args in runs.items():
            proc = start_rsagent(["run", "-v", *args, "--output", "jsonl:/dev/null"], ready)
            try:
                run_loop(loop, target, 10)  # the first opens teach the discarder
                time.sleep(0.3)
                res[name].append(run_loop(loop, target, iterations))
            finally:
                err = stop_rsagent(proc)
            notes += [f"{name}: {line.split('INFO: ', 1)[-1]}" for line in err.splitlines() if "kernel counters" in line]
        if with_auditd:
            with Auditd():
                res["auditd"].append(run_loop(loop, target, iterations))
    med = {k: median(v) for k, v in res.items()}
    base, floor_ns = med["none"], med["floor"] - med["none"]
    print(f"open+close of a file no rule covers, {iterations} iterations x {rounds} rounds (median ns/iteration):")
    for name in configs:
        extra = ""
        if name not in ("none", "floor") and floor_ns > 0:
            extra = f"   overhead = {(med[name] - base) / floor_ns:.2f}x the floor's"
        print(f"  {name:<12} {med[name]:8.1f}  {pct(med[name], base) if name != 'none' else '':>9}{extra}")
    for note in notes[-len(runs):]:
        print(f"  ({note})")


def pipeline(events: int) -> None:
    """Capacity of the whole pipeline, zero loss by construction: the probes
    fill a 256 MiB ring buffer while nobody reads; then the agent's own
    consumer (decode -> process context -> rule evaluation -> alert JSON)
    drains it, timed."""
    import os

    from codegen.policy import load_policies

    from agent.compiled import locate
    from agent.engine import Engine
    from agent.hooksets import TRACEPOINT
    from agent.kfilters import KernelFilters
    from agent.libbpf.ringbuf import RingBuffer
    from agent.runtime import Runtime, RuntimeConfig
    from agent.sinks import Sinks

    loop = build_c("openloop")
    hot = WORK / "hot-file"
    hot.write_text("x")
    policies = write_policies()
    for name, what in (("pipeline", "every event raises an alert (JSON to /dev/null)"),
                       ("pipeline-nomatch", "every event evaluated, none matches")):
        result = load_policies([policies[name]])
        compiled = locate(result)
        # A queue that holds the whole run: the figure includes the sink
        # thread's writes (the drain at close is inside the timing).
        sinks = Sinks(["jsonl:/dev/null,queue=10000000,queue_bytes=8G"])
        engine = Engine(result.ruleset, [sinks])
        rt = Runtime(RuntimeConfig(probe_object=compiled.probe_object, hook_set=TRACEPOINT,
                                   event_types={"open"}, handle_signals=False), engine)
        rt.processes.snapshot()
        progs = rt.programs()
        variables = {"rs_agent_tgid": os.getpid(), "rs_event_mask": rt.event_mask(),
                     "rs_send_mask": rt.send_mask()}
        with load_object(compiled.probe_object, programs=progs, variables=variables,
                         max_entries={"events": 256 << 20}) as obj:
            KernelFilters(obj, rt.layout, compiled.filters, rt.decoder.type_ids).load_approvers()
            obj.attach_all(progs)
            run_loop(loop, hot, events)
            with RingBuffer(obj.map("events"), rt.on_sample) as rb:
                t0 = time.perf_counter()
                while True:  # the agent's stages: decode in the callback, then resolve + evaluate
                    rb.consume()
                    if not rt.process_batch():
                        break
                sinks.close()
                dt = time.perf_counter() - t0
        st = engine.stats
        print(f"pipeline capacity ({what}): {st.events} events in {dt:.2f} s = {st.events / dt:,.0f} events/s "
              f"({dt / max(st.events, 1) * 1e6:.1f} us/event), {st.alerts} alerts, "
              f"decode errors {sum(rt.decoder.errors.values())}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--no-auditd", action="store_true")
    ap.add_argument("--baseline-discard", type=Path, help="objects `rulec compile` built for the discard policy "
                    "from baseline sources: measured beside the current ones")
    args = ap.parse_args(argv)
    require_root()
    WORK.mkdir(parents=True, exist_ok=True)
    overhead(args.iterations, args.rounds, not args.no_auditd, args.baseline_discard)
    pipeline(args.events)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pipeline capacity, side by side with another checkout of the agent.

    python bench/bench_pipeline.py [--baseline TREE] [--rounds N] [--events N]

The probes fill a 256 MiB ring buffer with ``--events`` opens while nobody
reads (zero loss by construction), then the agent's own consumer drains it,
timed: decode -> resolve (process context) -> rule evaluation -> alert JSON
to /dev/null. Two policies: every event raises an alert; every event is
evaluated, none matches. With ``--baseline TREE`` (a checkout of another
commit, built with ``python -m agent.build`` in it), rounds alternate
between the two trees, each in its own process, and the medians and their
ratio are printed: what a change costs, measured in one run on this noisy
machine. A tree is driven through the API it has (the ring buffer callback
of either generation of the runtime).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAIN = HERE.parent
POLICIES = {
    "alert": 'rules:\n  - id: every_open\n    expression: open.file.path == "{hot}"\n',
    "nomatch": 'rules:\n  - id: other_comm\n    expression: open.file.path == "{hot}" && process.comm == "no-such-comm"\n',
}


def child(tree: Path, case: str, events: int, work: Path, profile: Path | None = None) -> dict[str, float]:
    """One measurement in this process, with ``tree``'s agent."""
    sys.path.insert(0, str(tree))
    from agent.compiled import locate
    from agent.engine import Engine
    from agent.hooksets import TRACEPOINT
    from agent.kfilters import KernelFilters
    from agent.libbpf import load_object
    from agent.libbpf.ringbuf import RingBuffer
    from agent.runtime import Runtime, RuntimeConfig
    from codegen.policy import load_policies

    from bench.common import build_c, run_loop

    hot = work / "hot-file"
    hot.write_text("x")
    policy = work / f"{case}.policy"
    policy.write_text(POLICIES[case].format(hot=hot))
    result = load_policies([policy])
    compiled = locate(result)
    devnull = open(os.devnull, "w")
    try:
        from agent.sinks import Sinks  # the threaded sinks (a package in newer trees)

        sinks = Sinks(["jsonl:/dev/null,queue=10000000,queue_bytes=8G"])
        sink_list: list = [sinks]
        closer = sinks.close
    except (ImportError, ValueError, TypeError):
        from agent.sinks import StreamSink  # type: ignore[attr-defined]

        sink_list = [StreamSink(devnull, "null", flush_each=False)]
        closer = sink_list[0].flush
    engine = Engine(result.ruleset, sink_list)
    rt = Runtime(RuntimeConfig(probe_object=compiled.probe_object, hook_set=TRACEPOINT,
                               event_types={"open"}, handle_signals=False), engine)
    rt.processes.snapshot()
    progs = rt.programs()
    variables = {"rs_agent_tgid": os.getpid(), "rs_event_mask": rt.event_mask(), "rs_send_mask": rt.send_mask()}
    loop = build_c("openloop")
    with load_object(compiled.probe_object, programs=progs, variables=variables,
                     max_entries={"events": 256 << 20}) as obj:
        KernelFilters(obj, rt.layout, compiled.filters, rt.decoder.type_ids).load_approvers()
        obj.attach_all(progs)
        run_loop(loop, hot, events)
        try:
            from agent.heap import settle  # what the event loop does first (trees since issue 12's consumer work)
        except ImportError:
            def settle() -> None:
                pass
        settle()
        staged = hasattr(rt, "on_sample")
        callback = rt.on_sample if staged else rt._on_record  # type: ignore[attr-defined]
        with RingBuffer(obj.map("events"), callback) as rb:
            prof = cProfile.Profile() if profile is not None else None
            if prof is not None:
                prof.enable()
            t0 = time.perf_counter()
            decode_s = 0.0   # CPU time in the ring buffer's callback (decode), the rest: resolve+rules+sinks
            if staged:
                while True:
                    c0 = time.process_time()
                    rb.consume()
                    decode_s += time.process_time() - c0
                    if not rt.process_batch():
                        break
            else:
                while rb.consume() > 0:
                    pass
            closer()
            dt = time.perf_counter() - t0
            if prof is not None and profile is not None:
                prof.disable()
                prof.dump_stats(str(profile))
    devnull.close()
    st = engine.stats
    return {"events": st.events, "alerts": st.alerts, "seconds": dt, "decode_seconds": decode_s}


def profile_cases(profile: Path, events: int, work: Path) -> int:
    """One round of each case in this tree under cProfile; the top of each by own time."""
    import pstats

    for case in POLICIES:
        out_file = profile.with_name(f"{profile.name}.{case}")
        cmd = [sys.executable, str(HERE / "bench_pipeline.py"), "--events", str(events), "--profile", str(out_file),
               "--child", str(MAIN), case, str(work)]
        out = subprocess.run(cmd, cwd=MAIN, env={**os.environ, "PYTHONPATH": str(MAIN)},
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        m = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{case}: {m['events']} events, {m['alerts']} alerts, {m['events'] / m['seconds']:,.0f} events/s "
              f"(under cProfile); stats in {out_file}")
        pstats.Stats(str(out_file)).sort_stats("tottime").print_stats(25)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout, measured alternately")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--profile", type=Path, default=None,
                    help="one round of each case in this tree under cProfile: stats to PROFILE.CASE")
    ap.add_argument("--child", nargs=3, metavar=("TREE", "CASE", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        tree, case, work = args.child
        print(json.dumps(child(Path(tree), case, args.events, Path(work), args.profile)))
        return 0
    if os.geteuid() != 0:
        print("bench_pipeline: needs root", file=sys.stderr)
        return 1
    work = Path("/tmp/rsagent-bench-pipeline")
    work.mkdir(exist_ok=True)
    if args.profile is not None:
        return profile_cases(args.profile, args.events, work)
    trees = {"this tree": MAIN}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), "this tree": MAIN}
    results: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for case in POLICIES:
            for label, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": f"{tree}:{MAIN}"}
                out = subprocess.run([sys.executable, str(HERE / "bench_pipeline.py"), "--events", str(args.events),
                                      "--child", str(tree), case, str(work)],
                                     cwd=tree, env=env, capture_output=True, text=True)
                if out.returncode != 0:
                    print(out.stderr[-3000:], file=sys.stderr)
                    return 1
                m = json.loads(out.stdout.strip().splitlines()[-1])
                rate = m["events"] / m["seconds"]
                results.setdefault((case, label), []).append(rate)
                decode_us = m.get("decode_seconds", 0.0) / max(m["events"], 1) * 1e6
                print(f"round {r + 1} {case:8} {label:10}: {m['events']} events, {m['alerts']} alerts, "
                      f"{rate:,.0f} events/s ({1e6 / rate:.1f} µs/event, of which decode {decode_us:.1f} µs CPU)",
                      flush=True)
    print()
    for case in POLICIES:
        meds = {label: statistics.median(results[(case, label)]) for label in trees}
        line = ", ".join(f"{label} {v:,.0f} events/s" for label, v in meds.items())
        if len(meds) == 2:
            line += f" (this tree / baseline = {meds['this tree'] / meds['baseline']:.2f})"
        print(f"median {case:8}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Foundation benchmark: what `rsagent trace` costs and how fast it decodes.

    .venv/bin/python -m bench.bench_trace [--iterations N] [--rounds R]

1. Overhead on an open()+close() loop (C, bench/c/openloop.c) of one file,
   in alternating rounds: no agent; the floor (empty programs on exactly the
   tracepoints `rsagent trace` attaches); the real probes with nobody reading
   the (large enough) ring buffer, i.e. the kernel-side cost alone; and
   `rsagent trace` writing every event as JSON to /dev/null, whose Python
   consumer competes with the loop for the machine's 2 cores. Median
   ns/iteration per configuration.
2. Decode capacity: the open programs fill a 64 MiB ring buffer while nothing
   reads it; then the agent's decoder drains it, timed: events/s with zero
   loss by construction (decode only, and decode + JSON as `trace` does).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from agent.evaluator.event import materialize

from agent.clock import BootClock
from agent.events.decode import Decoder
from agent.events.resolve import ResolveEnv, Resolver
from agent.events.layout import layout
from agent.hooksets import TRACEPOINT
from agent.libbpf import load_object
from agent.libbpf.ringbuf import RingBuffer
from agent.mounts import MountTable
from agent.process.cache import ProcessCache
from agent.sinks import dumps
from agent.users import UserNames

from .common import (WORK, build_bpf, build_c, median, objects_dir, pct, require_root, run_loop, start_rsagent,
                     stop_rsagent as stop_trace)


def start_trace(ready: Path) -> subprocess.Popen[bytes]:
    return start_rsagent(["trace", "--ringbuf-mb", "64"], ready)


def overhead(iterations: int, rounds: int) -> dict[str, float]:
    loop = build_c("openloop")
    empty = build_bpf("empty_trace")
    target = WORK / "target-file"
    target.write_text("x")
    results: dict[str, list[float]] = {"none": [], "empty": [], "probes": [], "trace": []}
    probe_obj = objects_dir() / "probe.bpf.o"
    # Room for every record of a round, so "probes" never hits the lost path.
    rb_bytes = 1 << max(22, (iterations * 512 - 1).bit_length())
    ready = WORK / "trace.ready"
    lost_lines = []
    for _ in range(rounds):
        results["none"].append(run_loop(loop, target, iterations))
        with load_object(empty, attach=True):
            results["empty"].append(run_loop(loop, target, iterations))
        with load_object(probe_obj, programs=TRACEPOINT.programs_for(None),
                         variables={"rs_agent_tgid": os.getpid()},
                         max_entries={"events": rb_bytes}, attach=True):
            results["probes"].append(run_loop(loop, target, iterations))
        proc = start_trace(ready)
        try:
            results["trace"].append(run_loop(loop, target, iterations))
        finally:
            err = stop_trace(proc)
        lost_lines += [line for line in err.splitlines() if "lost" in line]
    med = {k: median(v) for k, v in results.items()}
    base = med["none"]
    print(f"open+close loop, {iterations} iterations x {rounds} rounds (median ns/iteration):")
    print(f"  no agent            {med['none']:8.1f}")
    print(f"  empty programs      {med['empty']:8.1f}   {pct(med['empty'], base)}")
    print(f"  probes, no reader   {med['probes']:8.1f}   {pct(med['probes'], base)}   (kernel side only)")
    print(f"  rsagent trace       {med['trace']:8.1f}   {pct(med['trace'], base)}   (kernel + Python consumer)")
    floor = med["empty"] - base
    if floor > 0:
        print(f"  overhead vs the floor's: probes {(med['probes'] - base) / floor:.1f}x,"
              f" trace {(med['trace'] - base) / floor:.1f}x")
    for line in lost_lines:
        print(f"  note: {line.strip()}")
    return med


def decode_capacity(events: int) -> None:
    loop = build_c("openloop")
    target = WORK / "target-file"
    target.write_text("x")
    lay = layout()
    clock = BootClock()
    env = ResolveEnv(clock, ProcessCache(clock), UserNames(), MountTable())
    env.processes.snapshot()
    for mode in ("decode", "decode+json"):
        dec = Decoder(lay)
        res = Resolver(env)
        progs = TRACEPOINT.programs_for(None)  # what `rsagent trace` attaches
        with load_object(objects_dir() / "probe.bpf.o", programs=progs,
                         variables={"rs_agent_tgid": os.getpid()},
                         max_entries={"events": 64 * 1024 * 1024}, attach=True) as obj:
            run_loop(loop, target, events)
            count = 0

            def on_decode(data, size, dec=dec, res=res) -> None:
                nonlocal count
                rec = dec.decode(data, size)
                if rec is not None and res.resolve(rec) is not None:
                    count += 1

            def on_json(data, size, dec=dec, res=res) -> None:
                nonlocal count
                rec = dec.decode(data, size)
                doc = res.resolve(rec) if rec is not None else None
                if doc is not None:
                    dumps(materialize(doc))
                    count += 1

            with RingBuffer(obj.map("events"), on_decode if mode == "decode" else on_json) as rb:
                t0 = time.perf_counter()
                while rb.consume() > 0:
                    pass
                dt = time.perf_counter() - t0
        print(f"decode capacity ({mode}): {count} events in {dt:.2f} s = {count / dt:,.0f} events/s"
              f" ({dt / max(count, 1) * 1e6:.1f} us/event); decode errors: {dict(dec.errors) or 0}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args(argv)
    require_root()
    overhead(args.iterations, args.rounds)
    decode_capacity(args.events)
    return 0


if __name__ == "__main__":
    sys.exit(main())

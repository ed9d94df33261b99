"""Would a second consumer pay? One process vs two, sharded by tgid (issue 12).

    python -m bench.bench_shard [--events N] [--rounds R]

A prototype measurement, not the agent's design: the probes fill a ring
buffer with ``--events`` opens of one file (nobody reading: no loss), the
raw records are copied out, then for each case of bench_pipeline (every
event an alert to ``jsonl:/dev/null``; every event evaluated, none matches)
they are consumed, timed, alternately

- ``one``: by this process alone (decode -> resolve -> rules -> sink), in
  batches of 1 024 as the runtime does;
- ``two``: split by thread-group id between this process and a forked
  second one (its own copy of the process cache, policy and sink): this one
  decodes and handles its share and writes the other's raw records, length
  prefixed, to a pipe, batch by batch; the second decodes and handles them.

The records all come from one writer: to stand for two writers (a tgid per
consumer), records alternate between the shards. Events/s = records /
wall time until both are done (the two share the machine's 2 cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

from agent.compiled import locate
from agent.engine import Engine
from agent.heap import settle
from agent.hooksets import TRACEPOINT
from agent.kfilters import KernelFilters
from agent.libbpf import load_object
from agent.libbpf.ringbuf import RingBuffer
from agent.runtime import Runtime, RuntimeConfig
from agent.sinks import Sinks
from bench.bench_pipeline import POLICIES
from bench.common import build_c, require_root, run_loop
from codegen.policy import load_policies

BATCH = 1024
_LEN = struct.Struct("=I")


def consumer(case: str, work: Path) -> tuple[Runtime, Callable[[list[bytes]], None], Callable[[], None]]:
    hot = work / "hot-file"
    hot.write_text("x")
    policy = work / f"{case}.policy"
    policy.write_text(POLICIES[case].format(hot=hot))
    result = load_policies([policy])
    sinks = Sinks(["jsonl:/dev/null,queue=10000000,queue_bytes=8G"])
    engine = Engine(result.ruleset, [sinks])
    rt = Runtime(RuntimeConfig(probe_object=locate(result).probe_object, hook_set=TRACEPOINT,
                               event_types={"open"}, handle_signals=False), engine)
    rt.processes.snapshot()
    ffi, decode, resolve = rt.decoder.ffi, rt.decoder.decode, rt.resolver.resolve

    def handle(bufs: list[bytes]) -> None:
        recs = [r for r in (decode(ffi.from_buffer(b), len(b)) for b in bufs) if r is not None]
        recs.sort(key=lambda r: r.hdr.timestamp)
        for r in recs:
            doc = resolve(r)
            if doc is not None:
                engine(doc)
    return rt, handle, sinks.close


def capture(events: int, work: Path) -> list[bytes]:
    rt, _, close = consumer("nomatch", work)
    out: list[bytes] = []
    ffi = rt.decoder.ffi
    progs = rt.programs()
    variables = {"rs_agent_tgid": os.getpid(), "rs_event_mask": rt.event_mask(), "rs_send_mask": rt.send_mask()}
    assert rt.config.probe_object is not None
    with load_object(rt.config.probe_object, programs=progs, variables=variables,
                     max_entries={"events": 256 << 20}) as obj:
        KernelFilters(obj, rt.layout, locate(load_policies([work / "nomatch.policy"])).filters,
                      rt.decoder.type_ids).load_approvers()
        obj.attach_all(progs)
        run_loop(build_c("openloop"), work / "hot-file", events)
        with RingBuffer(obj.map("events"), lambda data, size: out.append(bytes(ffi.buffer(data, size)))) as rb:
            rb.consume()
    close()
    return out


def measure(case: str, mode: str, recs: list[bytes], work: Path) -> float:
    """Events/s of one round, in a forked child (each round from the same state)."""
    r_fd, w_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w_fd)
        with os.fdopen(r_fd, "rb") as f:
            rate = float(f.read() or 0)
        os.waitpid(pid, 0)
        return rate
    os.close(r_fd)
    _, handle, close = consumer(case, work)
    settle()
    if mode == "one":
        t0 = time.perf_counter()
        for i in range(0, len(recs), BATCH):
            handle(recs[i:i + BATCH])
        close()
    else:
        p_r, p_w = os.pipe()
        second = os.fork()
        if second == 0:
            os.close(p_w)
            with os.fdopen(p_r, "rb", buffering=1 << 20) as f:
                while head := f.read(4):
                    blob = f.read(_LEN.unpack(head)[0])
                    bufs, at = [], 0
                    while at < len(blob):
                        (n,) = _LEN.unpack_from(blob, at)
                        bufs.append(blob[at + 4:at + 4 + n])
                        at += 4 + n
                    handle(bufs)
            close()
            os._exit(0)
        os.close(p_r)
        t0 = time.perf_counter()
        with os.fdopen(p_w, "wb", buffering=1 << 20) as w:
            for i in range(0, len(recs), BATCH):
                chunk = recs[i:i + BATCH]
                theirs = b"".join(_LEN.pack(len(b)) + b for b in chunk[1::2])
                w.write(_LEN.pack(len(theirs)) + theirs)
                handle(chunk[0::2])
        close()
        os.waitpid(second, 0)
    rate = len(recs) / (time.perf_counter() - t0)
    os.write(w_fd, str(rate).encode())
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    require_root()
    work = Path("/tmp/rsagent-bench-shard")
    work.mkdir(exist_ok=True)
    recs = capture(args.events, work)
    results: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for case in POLICIES:
            for mode in ("one", "two"):
                rate = measure(case, mode, recs, work)
                results.setdefault((case, mode), []).append(rate)
                print(f"round {r + 1} {case:8} {mode}: {len(recs)} events, {rate:,.0f} events/s", flush=True)
    print()
    for case in POLICIES:
        one, two = (statistics.median(results[(case, m)]) for m in ("one", "two"))
        print(f"median {case:8}: one consumer {one:,.0f} events/s, two {two:,.0f} events/s (two / one = {two / one:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

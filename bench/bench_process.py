"""Process monitoring: exec+exit throughput with and without the agent, the
cost of the kernel programs, and the agent's memory per cached process.

Workload: a dash loop running ``/bin/true`` N times (fork + exec + exit per
iteration), timed from this process; processes/s is N / wall time. Median of
``--rounds`` rounds, without the agent and with it.

The agent runs in a child process (``--agent-child``): the real Runtime with
the exec/fork/exit probes, decoding every record and building every document
(no sink). It answers ``stats`` on stdin with a JSON line: process-cache size
and counters, memory (VmRSS, RssAnon, and tracemalloc's view of the Python
heap when ``--tracemalloc``), kernel counters.

Memory per cached process: the agent starts with a cache cap and retention
large enough to keep every image, the workload runs ``--cached`` processes,
and the growth of the Python heap (tracemalloc) and of RssAnon is divided by
the growth of the cache.

Kernel cost per program invocation comes from BPF run-time statistics
(``kernel.bpf_stats_enabled``; ``bpftool prog show`` run_time_ns/run_cnt).

Run as root: ``.venv/bin/python -m bench.bench_process [--processes N] [--rounds R] [--cached M]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROGRAMS = ("rs_sched_exec", "rs_sched_fork", "rs_sched_exit")


# -- the agent, in a child process ----------------------------------------------

def _rss() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon"):
            out[key] = int(value.split()[0]) * 1024
    return out


def agent_child(cache_max: int, use_tracemalloc: bool) -> int:
    from agent.features import probe
    from agent.hooksets import choose_hook_set
    from agent.objects import object_path
    from agent.runtime import BackgroundRun, Runtime, RuntimeConfig

    logging.basicConfig(level=logging.WARNING)
    choice = choose_hook_set(probe(object_path("features.bpf.o")))
    assert choice.hook_set is not None, choice.reason
    config = RuntimeConfig(
        probe_object=object_path("probe.bpf.o"), hook_set=choice.hook_set,
        event_types={"exec", "fork", "exit"}, ringbuf_bytes=32 << 20,
        handle_signals=False, poll_timeout_ms=20, process_cache_max=cache_max,
    )
    runtime = Runtime(config, lambda doc: None)
    runtime.processes.retention_ns = 3600 * 1_000_000_000  # keep every image of the run
    background = BackgroundRun(runtime, "bench-agent")
    try:
        background.start(30)
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the parent as JSON
        print(json.dumps({"error": f"agent did not attach: {exc}"}), flush=True)
        return 1
    if use_tracemalloc:
        tracemalloc.start()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "stats":
            _drain(runtime)
            procs = runtime.processes
            out: dict[str, Any] = {"cache": len(procs), "live": procs.live_count,
                                   "stats": procs.stats.as_dict(), **_rss()}
            if use_tracemalloc:
                out["heap"] = tracemalloc.get_traced_memory()[0]
            out["programs"] = _own_prog_stats(runtime)
            kstats = runtime.kernel_stats()
            out["lost"] = sum(t.lost for t in kstats.values())
            out["sent"] = {k: t.sent for k, t in kstats.items()}
            print(json.dumps(out), flush=True)
        elif cmd == "stop":
            break
    background.stop(30)
    print(json.dumps({"stopped": True, "decode_errors": dict(runtime.decoder.errors)}), flush=True)
    return 0


def _own_prog_stats(runtime: Any) -> dict[str, list[int]]:
    """run_cnt and run_time_ns of this agent's programs (fdinfo of their fds;
    other agents on the host have programs of the same names)."""
    out: dict[str, list[int]] = {}
    obj = runtime._obj
    if obj is None:
        return out
    for name in PROGRAMS:
        fields: dict[str, int] = {}
        fd = obj.program(name).fd
        for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("run_cnt", "run_time_ns"):
                fields[key] = int(value.split()[0])
        out[name] = [fields.get("run_cnt", 0), fields.get("run_time_ns", 0)]
    return out


def _drain(runtime: Any, timeout: float = 60.0) -> None:
    """Wait until user space has decoded every record the kernel sent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = sum(t.sent for t in runtime.kernel_stats().values())
        if runtime.decoder.decoded + sum(runtime.decoder.errors.values()) >= sent:
            return
        time.sleep(0.05)


class Agent:
    def __init__(self, cache_max: int, use_tracemalloc: bool) -> None:
        cmd = [sys.executable, "-m", "bench.bench_process", "--agent-child", "--cache-max", str(cache_max)]
        if use_tracemalloc:
            cmd.append("--tracemalloc")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self._read()
        if not ready.get("ready"):
            raise RuntimeError(f"bench agent failed to start: {ready}")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("bench agent exited early (see its stderr above)")
        return dict(json.loads(line))

    def ask(self, cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._read()

    def stop(self) -> dict[str, Any]:
        out = self.ask("stop")
        self.proc.wait(30)
        return out


# -- measurements ------------------------------------------------------------------

def run_processes(n: int) -> float:
    """Wall seconds for n fork+exec+exit of /bin/true from a dash loop."""
    start = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", f"i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done"],
                   check=True)
    return time.perf_counter() - start


def throughput(n: int, rounds: int) -> list[float]:
    return [n / run_processes(n) for _ in range(rounds)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=3000, help="processes per throughput round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cached", type=int, default=10_000, help="processes for the memory measurement")
    ap.add_argument("--agent-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cache-max", type=int, default=65536, help=argparse.SUPPRESS)
    ap.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.agent_child:
        return agent_child(args.cache_max, args.tracemalloc)
    if os.geteuid() != 0:
        print("bench_process: must run as root (loads BPF programs)", file=sys.stderr)
        return 1
    from agent.build import ROOT, build

    build(ROOT / "build", quiet=True)
    n, rounds = args.processes, args.rounds
    costs: dict[str, list[int]] = {}

    print(f"exec+exit throughput: {n} x /bin/true per round, {rounds} rounds alternating "
          "without/with the agent (median)")
    stats_path = Path("/proc/sys/kernel/bpf_stats_enabled")
    old_stats = stats_path.read_text().strip()
    base: list[float] = []
    with_agent: list[float] = []
    lost = 0
    stats_path.write_text("1\n")
    try:
        for _ in range(rounds):
            base.append(n / run_processes(n))
            agent = Agent(cache_max=65536, use_tracemalloc=False)
            try:
                with_agent.append(n / run_processes(n))
                s = agent.ask("stats")
            finally:
                agent.stop()
            lost += s["lost"]
            for name, (cnt, ns) in s["programs"].items():
                costs.setdefault(name, [0, 0])
                costs[name][0] += cnt
                costs[name][1] += ns
    finally:
        stats_path.write_text(old_stats + "\n")
    b, a = statistics.median(base), statistics.median(with_agent)
    print(f"  without agent: {b:8.0f} processes/s  (rounds: {', '.join(f'{x:.0f}' for x in base)})")
    print(f"  with agent:    {a:8.0f} processes/s  (rounds: {', '.join(f'{x:.0f}' for x in with_agent)})")
    print(f"  slowdown: {100 * (b - a) / b:.1f} %; events lost: {lost}")
    for name, (cnt, ns) in costs.items():
        print(f"  kernel {name}: {ns / max(cnt, 1):.0f} ns/run over {cnt} runs")

    print(f"memory: {args.cached} short-lived processes kept in the cache (retention > run)")
    agent = Agent(cache_max=max(65536, 2 * args.cached), use_tracemalloc=True)
    try:
        before = agent.ask("stats")
        run_processes(args.cached)
        after = agent.ask("stats")
    finally:
        agent.stop()
    grown = after["cache"] - before["cache"]
    heap = after["heap"] - before["heap"]
    anon = after["RssAnon"] - before["RssAnon"]
    print(f"  cache: {before['cache']} -> {after['cache']} images (+{grown}); lost events: {after['lost']}; "
          f"counters: {after['stats']}")
    print(f"  Python heap (tracemalloc): +{heap / 2**20:.1f} MiB = {heap / max(grown, 1):.0f} B/process")
    print(f"  RssAnon: +{anon / 2**20:.1f} MiB = {anon / max(grown, 1):.0f} B/process "
          f"(VmRSS {after['VmRSS'] / 2**20:.0f} MiB total)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

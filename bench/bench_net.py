"""Network events: overhead on connect and DNS loads, side by side in one
run, and how many DNS queries per second the agent parses with zero loss.

    .venv/bin/python -m bench.bench_net [--tcp-iterations N] [--dns-iterations N] [--rounds R]
                                        [--flood N] [--rates R,R,...]

Loads in C (bench/c/netloop.c, compiled at bench time), run in a network
namespace the bench makes (only lo, so the DNS classifier sees nothing but
the load):

* ``tcp``: connect()+close() of a TCP socket to a listener on 127.0.0.1;
* ``dns``: a DNS query sent to 127.0.0.1:53 and the wait for its answer (a
  child echoes it).

Configurations, alternating in each round: no agent; the floor, empty
programs on exactly the hooks the network types use (the socket calls'
sys_exit tracepoints, a classifier on the egress and the ingress of the
namespace's lo that passes every packet on: bench/bpf/empty_net.bpf.c); ``rsagent run --netns NS`` with two
rules that never match the load, ``connect.addr.ip in 169.254.169.254/32``
(an address approver: the load's connects are dropped in the kernel) and
``dns.question.name == "evil.example"`` (no kernel approver: every query
reaches the rule engine); ``rsagent trace --netns NS`` of connect and dns
events to /dev/null (every event to user space as JSON).

Capacity: ``--flood`` distinct queries sent at each rate of ``--rates``
(queries/s; 0: as fast as the sender can) while the agent's runtime decodes
every dns event in this process (the default 8 MiB ring buffer): queries
sent, parsed by the kernel, delivered as documents, lost (ring buffer
full). The highest rate with zero loss is the figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.hooksets import TRACEPOINT
from agent.libbpf import load_object
from agent.net.classifier import DnsClassifier, Program
from agent.net.namespaces import resolve
from agent.net.tc import EGRESS, INGRESS
from agent.runtime import BackgroundRun, Runtime, RuntimeConfig

from .common import WORK, build_bpf, build_c, median, objects_dir, pct, require_root, start_rsagent, stop_rsagent

CONFIGS = ("none", "floor", "run", "trace")
LABELS = {
    "none": "no agent",
    "floor": "empty programs on the same hooks",
    "run": "rsagent run, rules that do not match",
    "trace": "rsagent trace of connect+dns to /dev/null",
}
POLICY = """\
version: 1.0.0
rules:
  - id: imds
    expression: connect.addr.ip in 169.254.169.254/32
  - id: evil_name
    expression: dns.question.name == "evil.example"
"""
NETNS = f"rsagent-bench-{os.getpid()}"


def netns_up() -> None:
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    subprocess.run(["ip", "-n", NETNS, "link", "set", "lo", "up"], check=True)


def netns_down() -> None:
    subprocess.run(["ip", "netns", "del", NETNS], check=False)


def run_load(loop: Path, mode: str, n: int, rate: float = 0) -> float:
    args = ["ip", "netns", "exec", NETNS, str(loop), mode, str(n)] + ([str(rate)] if rate else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    return float(out.stdout)


class Floor:
    """The empty programs: tracepoints attached by section, the classifier through netlink."""

    def __enter__(self) -> Floor:
        obj = load_object(build_bpf("empty_net"))
        self.obj = obj
        self.links = obj.attach_all([n for n in obj.programs if obj.program(n).kind != "tc"])
        # on both hooks, as the agent's query and response classifiers
        fd = obj.program("empty_tc").fd
        self.tc = DnsClassifier([Program(fd, EGRESS), Program(fd, INGRESS)], [resolve(NETNS)]).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.tc.close()
        self.obj.close()


def measure(name: str, load: Callable[[], float], rounds: int, policy: Path) -> None:
    results: dict[str, list[float]] = {c: [] for c in CONFIGS}
    counters: list[str] = []
    for _ in range(rounds):
        results["none"].append(load())
        with Floor():
            results["floor"].append(load())
        proc = start_rsagent(["run", "-v", "--policy", str(policy), "--netns", NETNS,
                              "--output", "jsonl:/dev/null"], WORK / "net-run.ready")
        try:
            results["run"].append(load())
        finally:
            err = stop_rsagent(proc)
        counters = [line.split("INFO: ", 1)[-1] for line in err.splitlines()
                    if "kernel counters" in line or "DNS parser" in line]
        proc = start_rsagent(["trace", "--netns", NETNS, "--event-type", "connect", "--event-type", "dns",
                              "--output", "jsonl:/dev/null"], WORK / "net-trace.ready")
        try:
            results["trace"].append(load())
        finally:
            stop_rsagent(proc)
    med = {c: median(v) for c, v in results.items()}
    base = med["none"]
    print(f"{name} (median ns/iteration over {rounds} rounds):")
    for c in CONFIGS:
        print(f"  {LABELS[c]:44s} {med[c]:9.1f}   {pct(med[c], base) if c != 'none' else ''}")
    for line in counters[-2:]:
        print(f"  rsagent run, last round: {line}")


class _Count:
    def __init__(self) -> None:
        self.docs = 0

    def __call__(self, doc: dict[str, Any]) -> None:
        if doc["type"] == "dns":
            self.docs += 1


def capacity(loop: Path, n: int, rates: list[float]) -> None:
    print(f"DNS capacity: {n} distinct queries per rate, the agent decoding every dns event (8 MiB ring buffer)")
    print(f"  {'target q/s':>10s} {'sent q/s':>10s} {'parsed':>8s} {'delivered':>9s} {'lost':>6s} {'malformed':>9s}")
    best = 0.0
    for rate in rates:
        count = _Count()
        config = RuntimeConfig(probe_object=objects_dir() / "probe.bpf.o", hook_set=TRACEPOINT,
                               event_types={"dns"}, handle_signals=False, poll_timeout_ms=50, netns=(NETNS,))
        runtime = Runtime(config, count)
        background = BackgroundRun(runtime, "bench-dns")
        background.start()
        try:
            sent_rate = run_load(loop, "flood", n, rate)
            deadline = time.monotonic() + 30
            while count.docs < n and time.monotonic() < deadline:
                dns = runtime.kernel_stats().get("dns")
                if dns is not None and dns.sent + dns.lost >= n and count.docs >= dns.sent:
                    break
                time.sleep(0.1)
        finally:
            summary = background.stop()
        assert summary is not None
        k = summary.kernel.get("dns")
        parsed = summary.dns.get("parsed", 0)
        bad = sum(summary.dns.get(x, 0) for x in ("truncated", "no_question", "bad_label", "name_too_long",
                                                  "bad_pointer"))
        lost = k.lost if k else 0
        print(f"  {rate or float('inf'):>10.0f} {sent_rate:>10.0f} {parsed:>8d} {count.docs:>9d} {lost:>6d} {bad:>9d}")
        if lost == 0 and count.docs == n and parsed == n:
            best = max(best, sent_rate)
    print(f"  highest rate with zero loss: {best:.0f} queries/s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tcp-iterations", type=int, default=20_000)
    ap.add_argument("--dns-iterations", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--flood", type=int, default=100_000)
    ap.add_argument("--rates", default="10000,20000,40000,80000,0",
                    help="queries/s of each capacity run (0: unpaced)")
    args = ap.parse_args(argv)
    require_root()
    loop = build_c("netloop")
    policy = WORK / "net.policy"
    policy.write_text(POLICY)
    netns_up()
    try:
        measure(f"TCP connect+close on loopback, {args.tcp_iterations} iterations",
                lambda: run_load(loop, "tcp", args.tcp_iterations), args.rounds, policy)
        measure(f"DNS query + answer on loopback (UDP), {args.dns_iterations} iterations",
                lambda: run_load(loop, "dns", args.dns_iterations), args.rounds, policy)
        capacity(loop, args.flood, [float(r) for r in args.rates.split(",")])
    finally:
        netns_down()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""File integrity monitoring overhead, side by side in one run.

    .venv/bin/python -m bench.bench_fim [--open-iterations N] [--cru-iterations N] [--rounds R]

Two loads in C (bench/c/fimloop.c, compiled at bench time), each timed in
alternating rounds under four configurations:

* ``open``: open()+close() of one file;
* ``cru``: create (open O_CREAT) + close, rename, unlink: two path-based
  calls whose objects come from the ctime tracepoints, and an open.

Both run in a tmpfs the bench mounts (``--fs tmpfs``, the default): the
development disk is ext4 with ``discard``, whose unlink cost swings by tens
of microseconds and drowns the hooks' cost. ``--fs ext4`` runs them under
the bench's work directory instead.

Configurations: no agent; the floor, empty programs on exactly the hooks the
FIM event types attach (bench/bpf/empty_fim.bpf.c: every sys_exit variant +
the three ctime tracepoints); the real probes for every FIM type with nobody
reading a ring buffer large enough for the round (the kernel side alone, every
event built and sent); the agent's runtime decoding every event into a
document in a thread of this process (every event reaches Python), competing
with the load for the machine's cores; and `rsagent run` with a policy of FIM
rules on other files (open, chmod, rename, unlink of /etc/rsagent-bench/*):
their approvers drop the loads' events in the kernel, the production path.
Median ns/iteration per configuration, and the events lost by the decoding
agent (ring buffer full), if any.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.hooksets import TRACEPOINT
from agent.libbpf import load_object
from agent.runtime import BackgroundRun, Runtime, RuntimeConfig

from .common import (
    WORK,
    build_bpf,
    build_c,
    median,
    objects_dir,
    pct,
    require_root,
    start_rsagent,
    stop_rsagent,
)

FIM_TYPES = frozenset({
    "open", "chmod", "chown", "mkdir", "rmdir", "unlink", "rename", "link",
    "utimes", "setxattr", "removexattr", "mount", "umount",
})
CONFIGS = ("none", "empty", "probes", "agent", "run")
LABELS = {
    "none": "no agent",
    "empty": "empty programs on the same hooks",
    "probes": "FIM probes, nobody reading (kernel side)",
    "agent": "FIM probes + agent decoding every event",
    "run": "rsagent run, FIM rules on other files",
}
POLICY = "rules:\n" + "".join(
    f'  - id: other_{t}\n    expression: {t}.file.path == "/etc/rsagent-bench/secret"\n'
    for t in ("open", "chmod", "rename", "unlink"))


def run_load(loop: Path, mode: str, directory: Path, n: int) -> float:
    out = subprocess.run([str(loop), mode, str(directory), str(n)], check=True, capture_output=True, text=True)
    return float(out.stdout)


def _event_mask() -> int:
    from agent.events.layout import layout
    lay = layout()
    return sum(1 << lay.const(f"RS_EVENT_{t.upper()}") for t in FIM_TYPES)


@contextmanager
def probes(ring_bytes: int) -> Iterator[None]:
    with load_object(objects_dir() / "probe.bpf.o", programs=TRACEPOINT.programs_for(set(FIM_TYPES)),
                     variables={"rs_agent_tgid": os.getpid(), "rs_event_mask": _event_mask()},
                     max_entries={"events": ring_bytes}, attach=True):
        yield


class _Counter:
    def __init__(self) -> None:
        self.docs = 0

    def __call__(self, doc: dict[str, Any]) -> None:
        self.docs += 1


@contextmanager
def agent(lost: list[int]) -> Iterator[None]:
    """The runtime (load, attach, decode every event) in a background thread."""
    config = RuntimeConfig(probe_object=objects_dir() / "probe.bpf.o", hook_set=TRACEPOINT,
                           event_types=set(FIM_TYPES), handle_signals=False, poll_timeout_ms=50)
    background = BackgroundRun(Runtime(config, _Counter()), "bench-agent")
    try:
        background.start()
    except Exception as exc:  # reported as the benchmark's failure
        raise SystemExit(f"the agent did not start: {exc}") from exc
    try:
        yield
    finally:
        summary = background.stop()
    assert summary is not None
    lost.append(sum(s.lost for s in summary.kernel.values()))


def measure(name: str, load: Callable[[], float], rounds: int, ring_bytes: int) -> dict[str, float]:
    empty = build_bpf("empty_fim")
    policy = WORK / "fim.policy"
    policy.write_text(POLICY)
    run_counters: list[str] = []
    results: dict[str, list[float]] = {c: [] for c in CONFIGS}
    lost: list[int] = []
    for _ in range(rounds):
        results["none"].append(load())
        with load_object(empty, attach=True):
            results["empty"].append(load())
        with probes(ring_bytes):
            results["probes"].append(load())
        with agent(lost):
            results["agent"].append(load())
        proc = start_rsagent(["run", "-v", "--policy", str(policy), "--output", "jsonl:/dev/null"],
                             WORK / "fim-run.ready")
        try:
            results["run"].append(load())
        finally:
            err = stop_rsagent(proc)
        run_counters = [line.split("INFO: ", 1)[-1] for line in err.splitlines() if "kernel counters" in line]
    med = {c: median(v) for c, v in results.items()}
    base = med["none"]
    print(f"{name} (median ns/iteration over {rounds} rounds):")
    for c in CONFIGS:
        print(f"  {LABELS[c]:44s} {med[c]:9.1f}   {pct(med[c], base) if c != 'none' else ''}")
    floor = med["empty"] - base
    if floor > 0:
        print(f"  added cost vs the floor's: probes {(med['probes'] - base) / floor:.1f}x,"
              f" agent {(med['agent'] - base) / floor:.1f}x")
    if any(lost):
        print(f"  note: the decoding agent lost {sum(lost)} events in {rounds} rounds (ring buffer full)")
    for line in run_counters:
        print(f"  rsagent run, last round: {line}")
    return med


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--open-iterations", type=int, default=200_000)
    ap.add_argument("--cru-iterations", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fs", choices=("tmpfs", "ext4"), default="tmpfs",
                    help="where the loads run (default: a tmpfs the bench mounts)")
    args = ap.parse_args(argv)
    require_root()
    loop = build_c("fimloop")
    with workdir(args.fs) as directory:
        (directory / "target").write_text("x")
        # Room for every record of a round (records are ~0.5 KiB): "probes" never loses.
        open_ring = 1 << (args.open_iterations * 640 - 1).bit_length()
        cru_ring = 1 << (args.cru_iterations * 3 * 768 - 1).bit_length()
        print(f"loads in {directory} ({args.fs})")
        measure(f"open+close, {args.open_iterations} iterations",
                lambda: run_load(loop, "open", directory, args.open_iterations), args.rounds, open_ring)
        measure(f"create+rename+unlink, {args.cru_iterations} iterations",
                lambda: run_load(loop, "cru", directory, args.cru_iterations), args.rounds, cru_ring)
    return 0


@contextmanager
def workdir(fs: str) -> Iterator[Path]:
    directory = WORK / "fim"
    directory.mkdir(parents=True, exist_ok=True)
    if fs == "tmpfs":
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "rsagent-bench", str(directory)], check=True)
    try:
        for stale in ("a", "b"):
            (directory / stale).unlink(missing_ok=True)
        yield directory
    finally:
        if fs == "tmpfs":
            subprocess.run(["umount", str(directory)], check=True)


if __name__ == "__main__":
    sys.exit(main())

"""Start-up: exec to ready file, and the verifier's share of it (issue 12).

    python -m bench.bench_startup [--baseline TREE] [--serial] [--rounds N]
    python -m bench.bench_startup --verifier [--top N]

The first form runs ``rsagent run -v --ready-file F --output jsonl:/dev/null``
with the default policy ``--rounds`` times (alternating with TREE's agent,
a checkout of another commit with its own .venv, when given; and with
``--serial`` this tree's agent with ``--load-threads 1``: one object, no threads), times exec
to the ready file, and timestamps the agent's log lines as they arrive to
split the time into stages; medians per tree, side by side.

The second form runs the agent in this process with every program loaded
at verifier log level 4 (BPF_LOG_STATS), and prints, per program, the
verifier's own time and the instructions it processed, largest first.
Both load BPF: run them under the machine lock, as root.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAIN = HERE.parent

# Stage boundaries: the first log line matching each, in this order; each
# stage runs from the previous boundary (exec for the first) to its own. A
# tree that does not log one (the baseline has no feature cache line) adds
# that stage's time to the next one.
STAGES: tuple[tuple[str, str], ...] = (
    ("imports, policy load, compiled-policy check, features", r"kernel features (from|probed)"),
    ("(baseline: all of the above) -> run", r"rule\(s\) from"),
    ("object load (verifier)", r"programs loaded \(verified|loaded \d+ approver|attached \d+ programs"),
    ("filters + attach", r"attached \d+ programs"),
    ("/proc snapshot", r"process table snapshot"),
)


@dataclass
class Round:
    ready: float
    marks: dict[str, float] = field(default_factory=dict)   # boundary pattern -> seconds since exec


def one_round(tree: Path, work: Path, extra: list[str]) -> Round:
    ready = work / "ready"
    ready.unlink(missing_ok=True)
    argv = [str(tree / ".venv" / "bin" / "rsagent"), "run", "-v", "--ready-file", str(ready),
            "--output", "jsonl:/dev/null", "--spool-dir", str(work / "spool"), *extra]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    marks: dict[str, float] = {}
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            now = time.monotonic() - t0
            lines.append(line)
            for _, pattern in STAGES:
                if pattern not in marks and re.search(pattern, line):
                    marks[pattern] = now

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = t0 + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            reader.join(5)
            raise SystemExit(f"{tree}: rsagent did not start:\n{''.join(lines)}")
        time.sleep(0.002)
    took = time.monotonic() - t0
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    reader.join(5)
    return Round(took, marks)


def stages(r: Round) -> dict[str, float]:
    """Each stage's duration: from the previous boundary (exec for the first) to its own."""
    out: dict[str, float] = {}
    prev = 0.0
    for name, pattern in STAGES:
        if pattern in r.marks:
            out[name] = r.marks[pattern] - prev
            prev = r.marks[pattern]
    out["-> ready file"] = r.ready - prev
    return out


def compare(trees: dict[str, tuple[Path, list[str]]], rounds: int) -> None:
    results: dict[str, list[Round]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        work = Path(tmp)
        for i in range(rounds):
            for name, (tree, extra) in trees.items():
                r = one_round(tree, work, extra)
                results[name].append(r)
                print(f"round {i + 1} {name}: ready in {r.ready:.3f} s", flush=True)
    names = list(trees)
    print("\n| | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    row = []
    for name in names:
        xs = [r.ready for r in results[name]]
        row.append(f"{statistics.median(xs):.2f} s ({min(xs):.2f}-{max(xs):.2f})")
    print(f"| exec -> ready, median of {rounds} | " + " | ".join(row) + " |")
    labels = [s for s, _ in STAGES] + ["-> ready file"]
    for label in labels:
        cells = []
        for name in names:
            xs = [stages(r)[label] for r in results[name] if label in stages(r)]
            cells.append(f"{statistics.median(xs) * 1000:.0f} ms" if xs else "-")
        print(f"| {label} | " + " | ".join(cells) + " |")


def verifier(top: int) -> None:
    """The agent in this process, every program loaded at log level 4."""
    sys.path.insert(0, str(MAIN))
    from agent import cli
    from agent.libbpf import object as bpfobject
    from agent.libbpf.log import VerifierStats, capture

    stats: list[VerifierStats] = []
    lock = threading.Lock()
    original = bpfobject.BpfObject.load

    def load(self: bpfobject.BpfObject) -> None:
        if os.path.basename(self.path) != "probe.bpf.o":
            original(self)
            return
        for prog in self.programs.values():
            if prog.autoload:
                prog.set_log_level(4)
        with capture() as log:
            original(self)
        with lock:
            stats.extend(log.verifier_stats())

    bpfobject.BpfObject.load = load  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        ready = Path(tmp) / "ready"

        def stop_when_ready() -> None:
            while not ready.exists():
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=stop_when_ready, daemon=True).start()
        rc = cli.main(["run", "--ready-file", str(ready), "--output", "jsonl:/dev/null",
                       "--spool-dir", str(Path(tmp) / "spool")])
    if rc:
        raise SystemExit(f"rsagent run exited {rc}")
    stats.sort(key=lambda s: s.usec, reverse=True)
    total_us = sum(s.usec for s in stats)
    total_insns = sum(s.insns for s in stats)
    print(f"{len(stats)} programs: verification {total_us / 1e6:.2f} s, {total_insns} insns processed\n")
    print("| program | verification | insns processed | states |")
    print("|---|---:|---:|---:|")
    for s in stats[:top]:
        print(f"| {s.program} | {s.usec / 1000:.0f} ms | {s.insns} | {s.states} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", type=Path, help="another checkout (with its .venv) to compare with")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--serial", action="store_true", help="also this tree loading serially (--load-threads 1)")
    p.add_argument("--verifier", action="store_true", help="per-program verifier statistics instead")
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench_startup: run as root (it loads BPF programs)")
    if args.verifier:
        verifier(args.top)
        return 0
    trees: dict[str, tuple[Path, list[str]]] = {"this tree": (MAIN, [])}
    if args.serial:
        trees["this tree, --load-threads 1"] = (MAIN, ["--load-threads", "1"])
    if args.baseline is not None:
        trees = {"baseline": (args.baseline.resolve(), []), **trees}
    compare(trees, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Live alert storm: two writers, the real `rsagent run`, a `jsonl:` sink.

    python -m bench.bench_storm [--baseline TREE] [--rounds N] [--iterations N] [--ringbuf-mb M]

Every event matches a rule: two writer processes (bench/c/openloop.c) open
and close one watched file ``--iterations`` times each, at once, on the
machine's two cores, while `rsagent run` (this tree's, or alternately a
``--baseline`` checkout's, each built) writes an alert per open to a
`jsonl:` file. Per round: the alerts delivered (lines of the rule in the
file), what the kernel side sent and lost (the agent's exit counters), and
alerts/s = alerts delivered / (from the writers' start to the last line
written). Medians of the rounds; the agent's own start and stop are not
timed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import WORK, build_c, require_root

MAIN = Path(__file__).resolve().parent.parent
RULE = "storm_open"
POLICY = f'rules:\n  - id: {RULE}\n    expression: open.file.path == "{{hot}}"\n'
_COUNTERS = re.compile(r"kernel counters: .*?\bopen: seen=(\d+) sent=(\d+) lost=(\d+)")


@dataclass
class Round:
    delivered: int
    sent: int
    lost: int
    seconds: float           # writers' start -> last alert written
    writer_ns: float         # ns per open+close of a writer (mean of the two)

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds


def _start(tree: Path, args: list[str], ready: Path) -> subprocess.Popen[bytes]:
    ready.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from agent.cli import main; sys.exit(main())",
                             "run", *args, "--ready-file", str(ready)],
                            cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 900  # a first run compiles the policy (clang)
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"rsagent run ({tree}) did not start: {err[-3000:]}")
        time.sleep(0.05)
    return proc


def _lines(out: Path) -> int:
    """Alerts of the storm rule in the sink's file."""
    if not out.exists():
        return 0
    with out.open("rb") as f:
        return sum(1 for line in f if f'"rule_id":"{RULE}"'.encode() in line)


def one_round(tree: Path, loop: Path, iterations: int, ringbuf_mb: int | None) -> Round:
    work = WORK / "storm"
    work.mkdir(parents=True, exist_ok=True)
    hot = work / "hot-file"
    hot.write_text("x")
    policy = work / "storm.policy"
    policy.write_text(POLICY.format(hot=hot))
    out = work / "alerts.jsonl"
    out.unlink(missing_ok=True)
    args = ["--policy", str(policy), "--output", f"jsonl:{out}"]
    if ringbuf_mb is not None:
        args += ["--ringbuf-mb", str(ringbuf_mb)]
    agent = _start(tree, args, work / "ready")
    try:
        t0 = time.monotonic()
        writers = [subprocess.Popen([str(loop), str(hot), str(iterations)], stdout=subprocess.PIPE, text=True)
                   for _ in range(2)]
        writer_ns = statistics.mean(float(w.communicate()[0]) for w in writers)
        # the last line written: the file stops growing (the sink writes as it goes)
        size, last = -1, time.monotonic()
        while time.monotonic() - last < 1.0:
            now = out.stat().st_size if out.exists() else 0
            if now != size:
                size, last = now, time.monotonic()
            time.sleep(0.02)
        seconds = last - t0
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err_bytes = agent.communicate(timeout=120)
    err = err_bytes.decode()
    found = _COUNTERS.findall(err)
    if not found:
        raise SystemExit(f"no kernel counters in the agent's log:\n{err[-3000:]}")
    _, sent, lost = found[-1]
    return Round(_lines(out), int(sent), int(lost), seconds, writer_ns)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout, built, measured alternately")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=100_000, help="opens per writer")
    ap.add_argument("--ringbuf-mb", type=int, default=None, help="the agent's --ringbuf-mb (default: its own)")
    args = ap.parse_args(argv)
    require_root()
    loop = build_c("openloop")
    trees = {"this tree": MAIN} if args.baseline is None else {"baseline": args.baseline.resolve(), "this tree": MAIN}
    results: dict[str, list[Round]] = {label: [] for label in trees}
    for r in range(args.rounds):
        for label, tree in trees.items():
            rnd = one_round(tree, loop, args.iterations, args.ringbuf_mb)
            results[label].append(rnd)
            print(f"round {r + 1} {label:10}: sent {rnd.sent}, lost {rnd.lost}, delivered {rnd.delivered} "
                  f"({rnd.delivered / max(rnd.sent, 1):.1%} of sent) in {rnd.seconds:.2f} s: {rnd.rate:,.0f} alerts/s; "
                  f"writers {rnd.writer_ns:,.0f} ns/open", flush=True)
    print()
    medians = {}
    for label, rounds in results.items():
        med = {k: statistics.median(getattr(x, k) for x in rounds) for k in ("sent", "lost", "delivered", "rate")}
        medians[label] = med
        print(f"median {label:10}: sent {med['sent']:,.0f}, lost {med['lost']:,.0f}, delivered {med['delivered']:,.0f}, "
              f"{med['rate']:,.0f} alerts/s")
    if len(medians) == 2:
        print(f"alerts/s this tree / baseline = {medians['this tree']['rate'] / medians['baseline']['rate']:.2f}")
    print(json.dumps(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())

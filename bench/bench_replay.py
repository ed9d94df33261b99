"""Record & replay: capture size per million events, and replay speed.

A real workload is recorded with `rsagent record` (no policy: every event):
a process opening ``--opens`` distinct files in a temporary tree and running
``--execs`` short-lived programs (each exec brings its fork and exit). The
capture's size over the events it holds gives bytes per event, scaled to a
million. Then the capture is replayed in-process (agent/replay.py, what
`rulec replay` runs) against the shipped default policy (rules/), alone and
with itself as baseline, ``--rounds`` times each: events/s, medians.

Run (root): ``.venv/bin/python -m bench.bench_replay [--opens N] [--execs N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import gzip
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.build import ROOT
from agent.capture import CaptureReader
from agent.replay import PolicyReplay, replay
from codegen.policy import load_policies

from .common import VENV_BIN, median, require_root

WORKLOAD = r'''
import os, subprocess, sys
d, opens, execs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(opens):
    sub = f"{d}/dir{i % 50}"
    os.makedirs(sub, exist_ok=True)
    os.close(os.open(f"{sub}/file-{i}.dat", os.O_WRONLY | os.O_CREAT, 0o600))
for i in range(execs):
    subprocess.run(["/bin/true", f"--run={i}"], check=True)
'''


def record(work: Path, opens: int, execs: int) -> Path:
    capture, ready = work / "bench.capture", work / "ready"
    rec = subprocess.Popen([str(VENV_BIN / "rsagent"), "record", "-o", str(capture), "--ready-file", str(ready)],
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if rec.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"rsagent record did not start: {rec.stderr.read() if rec.stderr else ''}")
            time.sleep(0.1)
        (work / "w.py").write_text(WORKLOAD)
        subprocess.run([sys.executable, str(work / "w.py"), str(work / "tree"), str(opens), str(execs)], check=True)
        time.sleep(1.0)
    finally:
        rec.send_signal(signal.SIGINT)
        _, err = rec.communicate(timeout=120)
    if rec.returncode:
        raise SystemExit(f"rsagent record failed: {err}")
    return capture


def replay_rate(capture: Path, policy: list[str], baseline: bool) -> tuple[float, int]:
    def load() -> PolicyReplay:
        result = load_policies(policy)
        return PolicyReplay(", ".join(result.files), result.ruleset)

    p, b = load(), load() if baseline else None
    reader = CaptureReader(capture)
    t0 = time.perf_counter()
    result = replay(reader, p, b)
    return result.events / (time.perf_counter() - t0), result.policy.engine.stats.alerts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opens", type=int, default=20000)
    ap.add_argument("--execs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    require_root()
    policy = [str(ROOT / "rules")]
    with tempfile.TemporaryDirectory(prefix="rsagent-bench-replay-") as tmp:
        capture = record(Path(tmp), args.opens, args.execs)
        size = capture.stat().st_size
        raw = len(gzip.open(capture).read())
        reader = CaptureReader(capture)
        types: dict[str, int] = {}
        for doc in reader.events():
            types[doc["type"]] = types.get(doc["type"], 0) + 1
        events = sum(types.values())
        print(f"capture: {events} events ({', '.join(f'{t} {n}' for t, n in sorted(types.items()))}), "
              f"{size} bytes gzip ({raw} bytes of JSON lines, x{raw / size:.1f})")
        print(f"  per event: {size / events:.0f} bytes; per million events: {size / events:.0f} MB "
              f"compressed, {raw / events:.0f} MB uncompressed")
        for baseline in (False, True):
            rates, alerts = [], 0
            for _ in range(args.rounds):
                rate, alerts = replay_rate(capture, policy, baseline)
                rates.append(rate)
            what = "default policy, with itself as --baseline" if baseline else "default policy"
            print(f"replay ({what}): {median(rates):,.0f} events/s (median of {args.rounds}; {alerts} alerts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

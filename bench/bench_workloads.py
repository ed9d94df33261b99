"""Real workloads without and with `rsagent run` (the bundled default policy).

Four workloads, each timed (wall clock) in alternating rounds without the
agent and with it (one agent started per workload and round, so the kernel
counters it logs at exit belong to that workload alone):

- ``tar``: ``tar xf`` of a tarball of /usr/share/doc into a fresh directory,
  then ``rm -r`` of that directory;
- ``compileall``: ``python -m compileall -q`` of a copy of the standard
  library (its ``__pycache__`` directories removed before each round, not
  timed);
- ``forkexec``: a dash loop running ``/bin/true`` 2 000 times;
- ``git``: ``git clone`` of a local repository (``--no-local``: objects
  copied through the pack protocol) and ``git checkout`` of an older commit
  in the clone.

Prints per workload the median wall time without and with the agent, the
ratio of the medians, the spread of the per-round ratios, the agent's CPU
time during the workload, and the kernel counters of the last round
(seen / sent / dropped per event type). Run as root, under the machine lock:

    flock /tmp/rsagent-bpf.lock .venv/bin/python -m bench.bench_workloads
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .common import WORK, median, require_root, start_rsagent, stop_rsagent

DOCS = Path("/usr/share/doc")
GIT_SOURCE = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    without: list[float] = field(default_factory=list)
    with_agent: list[float] = field(default_factory=list)
    agent_cpu: list[float] = field(default_factory=list)
    counters: str = ""


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    subprocess.run(cmd, check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Workloads:
    """Prepared inputs (outside the timing) and one timed run of each workload."""

    def __init__(self, root: Path, processes: int) -> None:
        self.root = root
        self.processes = processes
        root.mkdir(parents=True, exist_ok=True)
        self.tarball = root / "doc.tar"
        if not self.tarball.exists():
            with tarfile.open(self.tarball, "w") as tf:
                tf.add(DOCS, arcname="doc")
        self.stdlib = root / "stdlib"
        if not self.stdlib.exists():
            src = Path(sysconfig.get_paths()["stdlib"])
            shutil.copytree(src, self.stdlib, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "site-packages", "dist-packages"))
        self.repo = root / "repo.git"
        if not self.repo.exists():
            _run(["git", "clone", "-q", "--bare", "--no-local", str(GIT_SOURCE), str(self.repo)])
        out = subprocess.run(["git", "-C", str(self.repo), "rev-list", "--max-count=1", "--skip=40", "HEAD"],
                             check=True, capture_output=True, text=True)
        self.old_commit = out.stdout.strip()

    def tar(self) -> float:
        dest = self.root / "tar-out"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        t0 = time.perf_counter()
        _run(["tar", "xf", str(self.tarball), "-C", str(dest)])
        _run(["rm", "-r", str(dest)])
        return time.perf_counter() - t0

    def compileall(self) -> float:
        for d in list(self.stdlib.rglob("__pycache__")):
            shutil.rmtree(d)
        t0 = time.perf_counter()
        # -j1: one process, so the workload's shape does not depend on the cores left to it.
        _run([sys.executable, "-m", "compileall", "-q", "-j1", str(self.stdlib)])
        return time.perf_counter() - t0

    def forkexec(self) -> float:
        script = f"i=0; while [ $i -lt {self.processes} ]; do /bin/true; i=$((i+1)); done"
        t0 = time.perf_counter()
        _run(["/bin/dash", "-c", script])
        return time.perf_counter() - t0

    def git(self) -> float:
        dest = self.root / "clone"
        shutil.rmtree(dest, ignore_errors=True)
        t0 = time.perf_counter()
        _run(["git", "clone", "-q", "--no-local", str(self.repo), str(dest)])
        _run(["git", "-C", str(dest), "checkout", "-q", self.old_commit])
        elapsed = time.perf_counter() - t0
        shutil.rmtree(dest)
        return elapsed


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def _counters(log: str) -> str:
    """The nonzero per-type figures of the agent's last 'kernel counters' line."""
    lines = [ln for ln in log.splitlines() if "kernel counters:" in ln]
    if not lines:
        return "(no kernel counters logged)"
    parts = lines[-1].split("kernel counters: ", 1)[1].split("; ")
    keep = []
    for part in parts:
        if re.search(r"seen=0\b", part):
            continue
        keep.append(re.sub(r" \w+=0\b", "", part))
    return "; ".join(keep)


def run(names: list[str], rounds: int, processes: int, policy: list[str]) -> list[Result]:
    wl = Workloads(WORK / "workloads", processes)
    fns: dict[str, Callable[[], float]] = {"tar": wl.tar, "compileall": wl.compileall,
                                           "forkexec": wl.forkexec, "git": wl.git}
    results = {n: Result(n) for n in names}
    ready = WORK / "workloads.ready"
    args = ["run", "-v", "--output", "jsonl:/dev/null"] + [a for p in policy for a in ("--policy", p)]
    for n in names:
        fns[n]()  # warm the page cache and the tools; not counted
    for r in range(rounds):
        for n in names:
            # Alternate which configuration goes first in each round.
            for with_agent in ((False, True) if r % 2 == 0 else (True, False)):
                if not with_agent:
                    results[n].without.append(fns[n]())
                    continue
                proc = start_rsagent(args, ready)
                time.sleep(0.5)  # let the start-up's own work (the /proc snapshot) settle
                cpu0 = _cpu_seconds(proc.pid)
                results[n].with_agent.append(fns[n]())
                results[n].agent_cpu.append(_cpu_seconds(proc.pid) - cpu0)
                results[n].counters = _counters(stop_rsagent(proc))
            print(f"round {r + 1}/{rounds} {n}: without {results[n].without[-1]:.3f} s, "
                  f"with {results[n].with_agent[-1]:.3f} s", file=sys.stderr, flush=True)
    return [results[n] for n in names]


def filter_reasons(policy: list[str]) -> list[str]:
    """Per kernel event type of the policy: its in-kernel filter and the rules that make the
    kernel send events no rule may match (no approver; or an approver on the flags alone)."""
    from codegen.cbackend import _kernel_offer, kernel_filters
    from codegen.fields import REGISTRY
    from codegen.policy import load_policies

    ruleset = load_policies(policy or [str(GIT_SOURCE / "rules")]).ruleset
    out = []
    for t, f in sorted(kernel_filters(ruleset).items()):
        none, flags_only, prefix = [], [], 0
        for rule in ruleset.rules_for(t):
            offer, check, _ = _kernel_offer(rule, t, REGISTRY)
            if offer is None:
                none.append(rule.id)
            elif check == "flags":
                flags_only.append(f"{rule.id} ({offer.mask:#o})")
            elif check == "prefix":
                prefix += 1
        line = f"- {t}: {len(f.rules)} rule(s), {f.shape_summary}"
        if prefix and f.prefixes:
            line += (f"; {prefix} rule(s) approved by {len(f.prefix_masks())} directory prefix(es) of "
                     f"{f.prefix_field} (with their flags)")
        elif prefix:
            line += f"; {prefix} rule(s) offer a directory prefix"
        if none:
            line += f"; no approvers because of: {', '.join(none)}"
        elif flags_only:
            line += f"; approved on the flags alone (any path passes): {', '.join(flags_only)}"
        out.append(line)
    return out


def report(results: list[Result], rounds: int) -> None:
    print("| workload | without (s) | with agent (s) | ratio of medians | per-round ratios | agent CPU (s) |")
    print("|---|---:|---:|---:|---|---:|")
    for res in results:
        ratios = sorted(w / wo for w, wo in zip(res.with_agent, res.without))
        print(f"| {res.name} | {median(res.without):.3f} | {median(res.with_agent):.3f} | "
              f"**{median(res.with_agent) / median(res.without):.3f}** | "
              f"{ratios[0]:.2f}-{ratios[-1]:.2f} | {median(res.agent_cpu):.2f} |")
    print(f"\n({rounds} rounds, medians.) Kernel counters, last round with the agent:")
    for res in results:
        print(f"- {res.name}: {res.counters}")


def _status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM and RssAnon of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def rss(processes: int, policy: list[str]) -> None:
    """Resident memory of `rsagent run` once PROCESSES short-lived processes are in its cache
    (they exit within the cache's 60 s retention, so every image is still held)."""
    ready = WORK / "workloads.ready"
    args = ["run", "-v", "--output", "jsonl:/dev/null"] + [a for p in policy for a in ("--policy", p)]
    proc = start_rsagent(args, ready)
    try:
        time.sleep(1.0)
        before = _status(proc.pid)
        t0 = time.perf_counter()
        _run(["/bin/dash", "-c", f"i=0; while [ $i -lt {processes} ]; do /bin/true; i=$((i+1)); done"])
        elapsed = time.perf_counter() - t0
        time.sleep(1.0)  # the consumer's last batch
        after = _status(proc.pid)
    finally:
        log = stop_rsagent(proc)
    cache = [ln.split("process cache: ", 1)[1] for ln in log.splitlines() if "process cache: " in ln]
    mib = 2**20
    print(f"\nrsagent run, {processes} processes run in {elapsed:.1f} s (within the 60 s retention):")
    print(f"| | ready | after {processes} processes |")
    print("|---|---:|---:|")
    for key in ("VmRSS", "RssAnon", "VmHWM"):
        print(f"| {key} | {before[key] / mib:.1f} MiB | {after[key] / mib:.1f} MiB |")
    print(f"process cache at exit: {cache[-1] if cache else '(not logged)'}")
    print(f"kernel counters: {_counters(log)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--processes", type=int, default=2000, help="iterations of the fork+exec loop")
    ap.add_argument("--workload", action="append", choices=["tar", "compileall", "forkexec", "git"],
                    help="run only these (repeatable; default: all four)")
    ap.add_argument("--policy", action="append", default=[],
                    help="policy file or directory (default: the bundled default policy)")
    ap.add_argument("--rss", type=int, metavar="N", default=0,
                    help="instead: the agent's resident memory with N processes cached")
    args = ap.parse_args(argv)
    require_root()
    if args.rss:
        rss(args.rss, args.policy)
        return 0
    names = args.workload or ["tar", "compileall", "forkexec", "git"]
    report(run(names, args.rounds, args.processes, args.policy), args.rounds)
    print("\nIn-kernel filters of the policy:")
    print("\n".join(filter_reasons(args.policy)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

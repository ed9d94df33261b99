"""Process activity (issue 9): what each new hook adds to the syscall it
watches, per call, side by side with the bare syscall.

For each load of ``bench/c/activityloop.c`` (one process-activity or kernel
syscall in a loop: ptrace PEEKDATA, kill, setresuid, setresgid, capset,
memfd_create+close, splice+read, prctl, chdir, fchdir, unshare, setns;
bpf MAP_CREATE+close and a failing bpf command, anonymous and file-backed
PROT_EXEC mmap+munmap, mprotect RW <-> RX, failing init_module,
finit_module and delete_module, io_uring_setup+close and an io_uring NOP,
open_tree(OPEN_TREE_CLONE)+close and a failing fsmount), three
configurations in alternating rounds, median ns/iteration:

- no agent;
- the type's programs of the tracepoint hook set attached (probe.bpf.o,
  no policy): every call builds and sends a record (into a ring buffer large
  enough for the round, nobody reading: no consumer wake-ups);
- the same programs from a policy whose approvers match none of the loop's
  calls (``rsagent run``'s production path: dropped in the kernel before a
  record is built); n/a for setuid/setgid/capset, load_module/unload_module
  and mount (no approvable field).

A type the hook set leaves out on this kernel (load_module/unload_module
without module support) is measured without the agent only; the row says
what the kernel lacks.

The kernel's own accounting (``kernel.bpf_stats_enabled``; run_time_ns and
run_cnt of this process's program descriptors) gives each program's cost per
run and runs per call made, and their sum divided by the calls made: the
added kernel cost per call. The programs see every process: other processes'
calls of the same syscalls during a round are in the sum (runs per call
above 1 say how many).

Run as root: ``.venv/bin/python -m bench.bench_activity [--iterations N] [--rounds R] [--op OP]...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import build_c, require_root

# loop op -> event type
OPS: dict[str, str] = {
    "ptrace": "ptrace", "kill": "signal", "setuid": "setuid", "setgid": "setgid", "capset": "capset",
    "memfd": "memfd_create", "splice": "splice", "prctl": "prctl", "chdir": "chdir", "fchdir": "chdir",
    "unshare": "unshare", "setns": "setns",
    "bpfmap": "bpf", "bpfbad": "bpf", "mmapanon": "mmap", "mmapfile": "mmap", "mprotect": "mprotect",
    "initmod": "load_module", "finitmod": "load_module", "delmod": "unload_module",
    "uringsetup": "io_uring", "uringnop": "io_uring", "opentree": "mount", "fsmount": "mount",
}

# loads run 1/N of --iterations: an open_tree clone dropped at close takes ~10 µs
# on a quiet machine, 100-300 µs on a loaded one (its unmount waits for an RCU grace period)
FEWER: dict[str, int] = {"opentree": 20}

# rules no call of the loops matches, each with an approver the kernel checks
DROPPING_POLICY = """
rules:
  - id: ptrace_attach
    expression: ptrace.request == PTRACE_ATTACH
  - id: kill
    expression: signal.type == SIGKILL
  - id: memfd_exec
    expression: memfd_create.flags & MFD_EXEC > 0
  - id: dirty_pipe
    expression: splice.pipe_exit_flag & PIPE_BUF_FLAG_CAN_MERGE > 0
  - id: rename
    expression: prctl.option == PR_SET_NAME
  - id: into_cron
    expression: chdir.file.name == "cron.d"
  - id: userns
    expression: unshare.flags & CLONE_NEWUSER > 0
  - id: netns
    expression: setns.namespace.type & CLONE_NEWNET > 0
  - id: bpf_prog_load
    expression: bpf.cmd == BPF_PROG_LOAD
  - id: shared_exec_mapping
    expression: mmap.flags & MAP_SHARED > 0 && mmap.protection & PROT_EXEC > 0
  - id: shared_mapping_protection
    expression: mprotect.vm_protection & VM_SHARED > 0
  - id: io_uring_open
    expression: io_uring.op in [IORING_OP_OPENAT, IORING_OP_CONNECT]
"""


@dataclass
class Run:
    ns_per_call: list[float] = field(default_factory=list)
    # program -> [run_cnt, run_time_ns] summed over rounds
    programs: dict[str, list[int]] = field(default_factory=dict)
    calls: int = 0

    def add(self, ns: float, progs: dict[str, tuple[int, int]], calls: int) -> None:
        self.ns_per_call.append(ns)
        self.calls += calls
        for name, (cnt, t) in progs.items():
            acc = self.programs.setdefault(name, [0, 0])
            acc[0] += cnt
            acc[1] += t

    @property
    def median(self) -> float:
        return statistics.median(self.ns_per_call)

    def kernel_per_call(self) -> float:
        return sum(t for _, t in self.programs.values()) / max(self.calls, 1)

    def per_run(self) -> str:
        """Each program's ns per run and runs per loop call (above 1: other
        processes' calls of the same syscall ran it too, and are in the sum)."""
        used = {n: v for n, v in self.programs.items() if v[0]}
        return ", ".join(f"`{n}` {t / c:.0f} ns x{c / max(self.calls, 1):.2f}"
                         for n, (c, t) in sorted(used.items())) or "-"


def _prog_stats(obj: Any, names: list[str]) -> dict[str, tuple[int, int]]:
    out = {}
    for name in names:
        fields = {}
        for line in Path(f"/proc/self/fdinfo/{obj.program(name).fd}").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("run_cnt", "run_time_ns"):
                fields[key] = int(value.split()[0])
        out[name] = (fields.get("run_cnt", 0), fields.get("run_time_ns", 0))
    return out


def _loop(binary: Path, op: str, n: int) -> float:
    out = subprocess.run([str(binary), op, str(n)], check=True, capture_output=True, text=True)
    return float(out.stdout)


def _measure(binary: Path, op: str, n: int, obj: Any, names: list[str]) -> tuple[float, dict[str, tuple[int, int]]]:
    before = _prog_stats(obj, names)
    ns = _loop(binary, op, n)
    after = _prog_stats(obj, names)
    return ns, {k: (after[k][0] - before[k][0], after[k][1] - before[k][1]) for k in names}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--op", action="append", choices=sorted(OPS), help="only these loads")
    args = ap.parse_args(argv)
    require_root()
    from codegen.policy import load_policies

    from agent.build import ROOT, build
    from agent.compiled import locate
    from agent.events.decode import Decoder
    from agent.events.layout import layout
    from agent.features import probe
    from agent.hooksets import by_name
    from agent.kfilters import KernelFilters
    from agent.libbpf.object import load_object
    from agent.objects import object_path

    build(ROOT / "build", quiet=True)
    binary = build_c("activityloop")
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "dropping.policy"
        policy.write_text(DROPPING_POLICY)
        compiled = locate(load_policies([policy]))
    hs = by_name("tracepoint").restricted(probe(object_path("features.bpf.o")))
    type_ids = Decoder(layout()).type_ids
    variables = {"rs_agent_tgid": os.getpid()}
    stats_path = Path("/proc/sys/kernel/bpf_stats_enabled")
    old = stats_path.read_text().strip()
    results: dict[str, dict[str, Run]] = {}
    stats_path.write_text("1\n")
    try:
        for op in args.op or list(OPS):
            event_type = OPS[op]
            n = max(args.iterations // FEWER.get(op, 1), 1)
            names = hs.programs_for({event_type})
            runs = results[op] = {"none": Run(), "probes": Run(), "dropped": Run()}
            droppable = event_type in compiled.filters
            for _ in range(args.rounds):
                runs["none"].add(_loop(binary, op, n), {}, n)
                if not names:
                    continue
                with load_object(object_path("probe.bpf.o"), programs=names, variables=variables,
                                 max_entries={"events": 64 << 20}, attach=True) as obj:
                    runs["probes"].add(*_measure(binary, op, n, obj, names), n)
                if droppable:
                    with load_object(compiled.probe_object, programs=names, variables=variables,
                                     max_entries={"events": 64 << 20}, attach=True) as obj:
                        KernelFilters(obj, layout(), compiled.filters, type_ids).load_approvers()
                        runs["dropped"].add(*_measure(binary, op, n, obj, names), n)
            left_out = hs.left_out.get(event_type)
            print(_row(op, event_type, runs, f"left out on this kernel (needs {', '.join(left_out)})"
                       if left_out else ""), flush=True)
    finally:
        stats_path.write_text(old + "\n")
    return 0


def _row(op: str, event_type: str, runs: dict[str, Run], left_out: str) -> str:
    none, probes, dropped = runs["none"], runs["probes"], runs["dropped"]
    base = none.median
    cells = [f"{op} ({event_type})", f"{base:.0f}"]
    if not probes.ns_per_call:
        return "| " + " | ".join(cells + ["n/a", "n/a", left_out, "n/a", "n/a", "-"]) + " |"
    cells += [f"{probes.median:.0f} ({probes.median - base:+.0f})", f"{probes.kernel_per_call():.0f}",
              probes.per_run()]
    if dropped.ns_per_call:
        cells += [f"{dropped.median:.0f} ({dropped.median - base:+.0f})", f"{dropped.kernel_per_call():.0f}",
                  dropped.per_run()]
    else:
        cells += ["n/a", "n/a", "-"]
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    sys.exit(main())

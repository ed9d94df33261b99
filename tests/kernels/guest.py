"""The kernel matrix's in-kernel half: run inside a virtme-ng guest (or on
the host, for the running kernel) as root, write one JSON report.

    python tests/kernels/guest.py --compiled DIR [--policy FILE]... --out FILE

Steps, each on the real kernel, nothing mocked:
1. mount tracefs/bpffs/securityfs when absent, bring lo up;
2. `rsagent probe --json` (the CLI, as a user would run it);
3. for every hook set this kernel supports (the chosen one first): load the
   default policy's compiled object with *every* program of the set, attach
   them, fill the approvers as `rsagent run` does, and run the workload
   (workload.py) under the agent's Runtime with the rules engine: documents
   and alerts are checked. A load failure is diagnosed program by program
   (verifier log tail);
4. the documents of each event type must have the same shape whichever
   hook set produced them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernel_types import URING_ENV  # noqa: E402
from workload import Check, Workload, shape  # noqa: E402

from agent.libbpf.errors import BpfError, VerifierError  # noqa: E402

log = logging.getLogger("kernels.guest")

MOUNTS = (("tracefs", "/sys/kernel/tracing"), ("bpf", "/sys/fs/bpf"), ("securityfs", "/sys/kernel/security"))
LOG_TAIL = 12


@dataclass
class ProgramFailure:
    program: str
    error: str
    log_tail: list[str] = field(default_factory=list)


@dataclass
class HookSetRun:
    hook_set: str
    programs: list[str]
    left_out: dict[str, list[str]]
    attached: int = 0
    load_seconds: float = 0.0
    error: str = ""
    failures: list[ProgramFailure] = field(default_factory=list)
    docs: int = 0
    decode_errors: dict[str, int] = field(default_factory=dict)
    child_exit: int | None = None
    checks: list[Check] = field(default_factory=list)
    shapes: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class GuestReport:
    kernel: str
    probe: dict[str, Any]
    chosen: str
    runs: list[HookSetRun] = field(default_factory=list)
    shape_checks: list[Check] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def mount_kernel_fs() -> None:
    mounted = Path("/proc/self/mounts").read_text()
    for fstype, where in MOUNTS:
        if f" {where} " not in mounted:
            subprocess.run(["mount", "-t", fstype, fstype, where], check=False, capture_output=True)
    # the workload's DNS query leaves through lo (a guest may boot with it down)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False, capture_output=True)


def run_probe() -> dict[str, Any]:
    rsagent = Path(sys.executable).with_name("rsagent")
    proc = subprocess.run([str(rsagent), "probe", "--json"], capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"rsagent probe --json exited {proc.returncode}: {proc.stderr.strip()}")
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def _diagnose(probe_object: Path, programs: list[str], variables: dict[str, int]) -> list[ProgramFailure]:
    """Load and attach each program alone: every one that fails, with why."""
    from agent.libbpf.object import load_object

    from agent.libbpf.object import BpfObject
    from agent.runtime import CLASSIFIER_KINDS

    with BpfObject(probe_object) as spec:
        classifiers = {n for n in programs if spec.program(n).kind in CLASSIFIER_KINDS}
    failures = []
    for name in programs:
        try:
            # a classifier attaches to interfaces (agent/net), not by section: loading is its test
            obj = load_object(probe_object, programs=[name], variables=variables, attach=name not in classifiers)
            obj.close()
        except VerifierError as exc:
            failures.append(ProgramFailure(name, str(exc), exc.log.rstrip().splitlines()[-LOG_TAIL:]))
        except BpfError as exc:
            failures.append(ProgramFailure(name, str(exc)))
    return failures


class _ListSink:
    name = "list"

    def __init__(self, out: list[dict[str, Any]]) -> None:
        self.out = out

    def write(self, doc: dict[str, Any]) -> None:
        self.out.append(doc)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def run_hook_set(name: str, compiled_dir: Path, extra_policies: list[Path]) -> HookSetRun:
    from agent.evaluator.event import materialize
    from codegen.hostinfo import host_document
    from codegen.policy import load_policies

    from agent.compiled import locate
    from agent.engine import Engine
    from agent.features import probe
    from agent.hooksets import choose_hook_set
    from agent.kfilters import KernelFilters
    from agent.runtime import BackgroundRun, Runtime, RuntimeConfig

    result = load_policies([ROOT / "rules", *extra_policies], host=host_document())
    compiled = locate(result, compiled_dir)
    choice = choose_hook_set(probe(compiled.features_object), only=name)
    assert choice.hook_set is not None, choice.reason
    hs = choice.hook_set
    run = HookSetRun(name, hs.programs_for(None), {t: list(r) for t, r in hs.left_out.items()})
    work = Workload.prepare()
    engine = Engine(result.ruleset, [_ListSink(work.alerts)])
    lock = threading.Lock()

    def consume(doc: dict[str, Any]) -> None:
        engine(doc)
        with lock:
            work.docs.append(materialize(doc))

    def prepare(obj: Any) -> None:
        KernelFilters(obj, runtime.layout, compiled.filters, runtime.decoder.type_ids).load_approvers()

    config = RuntimeConfig(probe_object=compiled.probe_object, hook_set=hs, event_types=None,
                           handle_signals=False, poll_timeout_ms=50, ringbuf_bytes=4 << 20)
    runtime = Runtime(config, consume, prepare=prepare)
    background = BackgroundRun(runtime, f"runtime-{name}")
    started = time.monotonic()
    try:
        try:
            background.start(600)
        except Exception as exc:  # noqa: BLE001 - reported in the JSON, with each program's verdict
            run.load_seconds = round(time.monotonic() - started, 1)
            run.error = str(exc)
            glob = {"rs_agent_tgid": os.getpid(), **hs.variables}
            run.failures = _diagnose(compiled.probe_object, run.programs, glob)
            return run
        run.load_seconds = round(time.monotonic() - started, 1)
        run.attached = len(run.programs)
        work.run_child()
        run.child_exit = work.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if any(d["type"] == "exit" and d["process"]["pid"] == work.child_pid for d in work.docs):
                    break
            time.sleep(0.1)
        time.sleep(0.5)  # other CPUs' records
    finally:
        try:
            summary = background.stop(120)
        except Exception as exc:  # noqa: BLE001 - reported in the JSON
            run.error = str(exc)
        else:
            if summary is not None:
                run.decode_errors = dict(summary.decode_errors)
    types = hs.supported_event_types()
    run.docs = len(work.docs)
    precise = bool(hs.variables.get("rs_precise_hooks"))
    try:  # the checks read what the child left in its directory (activity.json): clean up after them
        run.checks = work.checks(types, precise=precise) + work.alert_checks(types)
    finally:
        work.cleanup()
    run.shapes = {}
    for d in work.docs:
        if d["process"]["pid"] == work.child_pid:
            run.shapes.setdefault(d["type"], [])
            run.shapes[d["type"]] = sorted(set(run.shapes[d["type"]]) | shape(d))
    return run


def compare_shapes(runs: list[HookSetRun]) -> list[Check]:
    out = []
    done = [r for r in runs if not r.error]
    for a, b in zip(done, done[1:], strict=False):
        for event_type in sorted(set(a.shapes) & set(b.shapes)):
            sa, sb = set(a.shapes[event_type]), set(b.shapes[event_type])
            diff = sorted(sa ^ sb)
            out.append(Check(f"{event_type} documents: same shape from {a.hook_set} and {b.hook_set}",
                             event_type, not diff, f"keys in only one: {diff}" if diff else ""))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compiled", type=Path, required=True, help="the default policy's compiled objects")
    ap.add_argument("--policy", type=Path, action="append", default=[],
                    help="policies loaded with the default one (the matrix's send-all rules)")
    ap.add_argument("--out", type=Path, required=True, help="JSON report")
    ap.add_argument("--hook-set", action="append", default=None, help="only these hook sets")
    ap.add_argument("--uring-helper", type=Path, default=None,
                    help="tests/kernel/c/uring.c, compiled on the host (the workload's io_uring calls)")
    args = ap.parse_args(argv)
    if args.uring_helper is not None:
        os.environ[URING_ENV] = str(args.uring_helper)
    logging.basicConfig(level=logging.WARNING, format="guest: %(levelname)s: %(message)s")
    started = time.monotonic()
    mount_kernel_fs()
    report = GuestReport(kernel=os.uname().release, probe={}, chosen="")
    try:
        report.probe = run_probe()
        report.chosen = str(report.probe.get("hook_set", ""))
        from agent.hooksets import HOOK_SETS

        features = report.probe.get("features", {})
        usable = [hs.name for hs in HOOK_SETS
                  if all(features.get(r, {}).get("available") for r in hs.requires)]
        for name in usable:
            if args.hook_set and name not in args.hook_set:
                continue
            print(f"guest: {report.kernel}: hook set {name}", flush=True)
            report.runs.append(run_hook_set(name, args.compiled, args.policy))
        report.shape_checks = compare_shapes(report.runs)
    except Exception as exc:
        log.exception("guest run failed")
        report.errors.append(f"{type(exc).__name__}: {exc}")
    report.seconds = round(time.monotonic() - started, 1)
    args.out.write_text(json.dumps(asdict(report), indent=1))
    print(f"guest: report written to {args.out} ({report.seconds} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

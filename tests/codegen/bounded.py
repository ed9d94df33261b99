"""Run policy loads in a worker process bounded in time and memory.

Hostile-input tests must not take the test run down with them: every case
runs in a separate Python process whose address space is capped with
``RLIMIT_AS`` (a runaway allocation ends in ``MemoryError`` inside the
worker, reported, instead of the kernel's OOM killer), whose peak resident
memory is measured per case (``VmHWM``, reset between cases through
``/proc/self/clear_refs``), and which the test kills when a case runs past
its time limit. One worker serves many cases (Python starts once), and is
restarted after a case it could not finish.

The worker (this file run as a script) reads one JSON request per line:
``{"path": FILE, "kind": "policy" | "cases"}`` and answers one JSON line:
``{"ok": bool, "error": TRACEBACK-or-"", "memory": bool, "seconds": float,
"peak_mb": float, "errors": int, "valid": bool, "messages": [str]}``.
"""
from __future__ import annotations

import json
import os
import resource
import select
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# What one case may spend: the documented bound on validating a policy at
# every limit at once is 5 s and 500 MB on this project's 2-core machine
# (bench/bench_limits.py); the time limit here is twice that, so that a
# loaded CI machine cannot fail a case that is merely slow.
CASE_SECONDS = 10.0
CASE_MEGABYTES = 500


@dataclass
class Outcome:
    ok: bool              # no exception (diagnostics are fine)
    error: str            # the traceback, when not ok
    memory: bool          # the case hit the address-space cap
    seconds: float
    peak_mb: float        # peak resident memory above the worker's baseline
    errors: int           # error diagnostics
    valid: bool           # loaded without errors
    messages: list[str]   # the first diagnostics, formatted
    timed_out: bool = False


class Worker:
    """A worker process; ``run`` one case at a time."""

    def __init__(self, megabytes: int = CASE_MEGABYTES) -> None:
        self.megabytes = megabytes
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, __file__, str(self.megabytes)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        return self.proc

    def run(self, path: Path, kind: str = "policy", seconds: float = CASE_SECONDS) -> Outcome:
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"path": str(path), "kind": kind}) + "\n")
        proc.stdin.flush()
        start = time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], seconds + 30.0)  # + the worker's start-up
        line = proc.stdout.readline() if ready else ""
        if not line:
            elapsed = time.monotonic() - start
            self.close()
            return Outcome(False, f"no answer after {elapsed:.1f} s (killed)", False, elapsed, 0.0, 0, False, [],
                           timed_out=True)
        reply: dict[str, Any] = json.loads(line)
        outcome = Outcome(**reply)
        if outcome.seconds > seconds:
            outcome.timed_out = True
        return outcome

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.communicate()
            self.proc = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the worker side ---------------------------------------------------------------

def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def _load(path: str, kind: str) -> tuple[int, bool, list[str]]:
    from codegen.cbackend import kernel_filters, render_policy_header
    from codegen.errors import Diagnostics
    from codegen.policy import load_policies
    from codegen.testcases import read_cases, run_cases

    if kind == "cases":
        result = load_policies([ROOT / "rules"])
        diags = Diagnostics()
        run_cases(result.ruleset, read_cases(Path(path), diags), diags)
    else:
        result = load_policies([path])
        diags = result.problems()  # the policy's errors and the rules' (each rule that has one is left out)
        p = Path(path)
        lines = max(1, p.read_bytes().count(b"\n") + 1) if p.is_file() else 1
        for d in diags:
            assert d.line >= 1 and d.col >= 1 and d.message, d
            assert d.line <= lines + 1, (d, lines)
        for rule in result.ruleset.rules:
            assert rule.matches({"type": rule.event_type}) in (True, False)
        if not diags.has_errors:
            render_policy_header(kernel_filters(result.ruleset))
    formatted = [d.format() for d in diags.sorted()]
    return diags.error_count, not diags.has_errors, formatted[:5]


def _serve(megabytes: int) -> None:
    import codegen.policy  # noqa: F401  (imported before the baseline is taken)

    limit = _status("VmSize") + megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for line in sys.stdin:
        request = json.loads(line)
        _reset_peak()
        base = _status("VmRSS")
        start = time.perf_counter()
        reply: dict[str, Any] = {"ok": True, "error": "", "memory": False, "errors": 0, "valid": False,
                                 "messages": []}
        try:
            reply["errors"], reply["valid"], reply["messages"] = _load(request["path"], request["kind"])
        except MemoryError:
            reply.update(ok=False, memory=True, error="MemoryError: over the address-space cap")
        except BaseException:  # noqa: BLE001 - any exception is what the test looks for
            reply.update(ok=False, error=traceback.format_exc())
        reply["seconds"] = time.perf_counter() - start
        reply["peak_mb"] = max(0, _status("VmHWM") - base) / (1024 * 1024)
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))  # Python's default recursion limit, as the agent has: a deep recursion is a bug

"""The kernel-type loads of bench/c/activityloop.c (bench/bench_activity.py)
produce the events they are there to measure: each load run a few times
under the tracer, every call seen with what it did. A load that stops
reaching its hook (a failing call failing earlier, a wrong flag) would
otherwise only show as a cheaper row in bench/README.md."""

from __future__ import annotations

import errno
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from kutil import mine

from agent.build import ROOT
from codegen.constants import lookup

sys.path.insert(0, str(ROOT))
from bench.bench_activity import OPS
from bench.common import build_c

pytestmark = pytest.mark.root

CALLS = 4


def _c(name: str) -> int:
    v = lookup(name)
    assert v is not None, name
    return v


def _rx_or_rw(m: dict[str, Any]) -> bool:
    return m["req_protection"] in (_c("PROT_READ") | _c("PROT_EXEC"), _c("PROT_READ") | _c("PROT_WRITE"))


# load -> what each of its calls' events (the type's part of the document)
# holds; the process's other events of the type (the dynamic loader's
# mappings, the io_uring ring's setup, ...) hold something else
CHECKS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "bpfmap": lambda b: b["cmd"] == _c("BPF_MAP_CREATE") and b["retval"] >= 0
    and b["map"]["type"] == _c("BPF_MAP_TYPE_ARRAY"),
    "bpfbad": lambda b: b["cmd"] == _c("BPF_MAP_LOOKUP_ELEM") and b["retval"] == -errno.EBADF,
    "mmapanon": lambda m: m["protection"] == _c("PROT_READ") | _c("PROT_EXEC")
    and m["flags"] & _c("MAP_ANONYMOUS") > 0 and m["retval"] > 0,
    "mmapfile": lambda m: m["protection"] == _c("PROT_READ") | _c("PROT_EXEC")
    and m["file"]["path"] == str(build_c("activityloop")) and m["retval"] > 0,
    "mprotect": lambda m: _rx_or_rw(m) and m["retval"] == 0,
    "initmod": lambda m: m["retval"] == -errno.ENOEXEC,
    # (-EKEYREJECTED where module signatures are enforced: checked before the ELF header)
    "finitmod": lambda m: m["retval"] in (-errno.ENOEXEC, -errno.EKEYREJECTED),
    "delmod": lambda m: m["retval"] == -errno.ENOENT,
    "uringsetup": lambda u: u["action"] == "setup" and u["retval"] >= 0,
    "uringnop": lambda u: u["action"] == "submit" and u["op"] == _c("IORING_OP_NOP") and u["retval"] == 0,
    "opentree": lambda m: m["syscall"] == "open_tree" and m["detached"] and m["retval"] >= 0,
    "fsmount": lambda m: m["syscall"] == "fsmount" and m["retval"] == -errno.EINVAL,
}


def test_every_kernel_type_load_is_checked() -> None:
    kernel_types = {"bpf", "mmap", "mprotect", "load_module", "unload_module", "io_uring", "mount"}
    assert set(CHECKS) == {op for op, t in OPS.items() if t in kernel_types}


@pytest.mark.parametrize("op", sorted(CHECKS))
def test_the_load_reaches_its_hook(tracer, op: str) -> None:
    event_type = OPS[op]
    if event_type not in tracer.hook_set.supported_event_types():
        pytest.skip(f"{event_type} left out on this kernel: {tracer.hook_set.left_out.get(event_type)}")
    loop = build_c("activityloop")
    with tracer.collect() as col:
        proc = subprocess.Popen([str(loop), op, str(CALLS)], stdout=subprocess.DEVNULL)
        assert proc.wait() == 0
    docs = [d[event_type] for d in mine(col, event_type, proc.pid)]
    calls = [d for d in docs if CHECKS[op](d)]
    assert len(calls) == CALLS, docs
    if op == "mprotect":                # RW -> RX, then back
        rx = _c("PROT_READ") | _c("PROT_EXEC")
        assert [m["req_protection"] == rx for m in calls] == [True, False] * (CALLS // 2), calls

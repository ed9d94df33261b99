"""load_module and unload_module. The module syscalls and tracepoints exist
only in kernels built with module support; this development kernel has
none, so here the types must be left out of the hook set, said why, and
the calls fail with ENOSYS. The kernel matrix (tests/kernels/workload.py)
loads and unloads a real module on Debian's kernels, from a file and from
memory, and checks both events, their failures, and the rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kutil import syscall

from agent.hooksets import tracefs_has

pytestmark = pytest.mark.root

ENOSYS = 38
MODULES = Path("/proc/modules").exists()


@pytest.mark.skipif(MODULES, reason="this kernel has modules: the kernel matrix checks the events")
def test_without_module_support_the_types_are_left_out_with_the_reason(tracer) -> None:
    assert not tracefs_has("module/module_load")
    for t, tp in (("load_module", "module/module_load"), ("unload_module", "module/module_free")):
        assert t not in tracer.hook_set.supported_event_types()
        assert tracer.hook_set.left_out[t] == (f"tracepoint {tp}",)
    with tracer.collect() as col:
        assert syscall("delete_module", "rsagent_no_such_module", os.O_NONBLOCK) == -ENOSYS
        assert syscall("init_module", None, 0, "") == -ENOSYS
    assert not col.of_type("load_module") and not col.of_type("unload_module")

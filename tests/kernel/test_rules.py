"""Rules on the kernel event types (bpf, mmap, mprotect, io_uring, the new
mount API, load_module, unload_module) through `rsagent run`, the way an
operator runs them: each loads, each fires on the real call, and the
approvers drop in the kernel what no rule can match (the kernel's own
counters say so)."""

from __future__ import annotations

import mmap
import os
import sys
from pathlib import Path

import pytest
from kutil import (
    AT_FDCWD, EXIT, FSMOUNT_CLOEXEC, MOV_R0_0, PAGE, fs_context, map_create, map_lookup, mmap_raw, mprotect_raw,
    munmap_raw, ok, prog_load, run_uring, uring_helper,
)

from agent.events.layout import layout

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rules"))
from agentproc import counters, start_agent  # tests/rules: `rsagent run` as a subprocess

pytestmark = pytest.mark.root

R, W, X = mmap.PROT_READ, mmap.PROT_WRITE, mmap.PROT_EXEC
MOVE_MOUNT_F_EMPTY_PATH = layout().const("RS_MOVE_MOUNT_F_EMPTY_PATH")


def _policy(tmp_path: Path, target: Path, opened: Path) -> Path:
    policy = tmp_path / "kernel.policy"
    policy.write_text(f"""\
version: 1.0.0
rules:
  - id: bpf_program_loaded
    expression: bpf.cmd == BPF_PROG_LOAD && bpf.prog.name == "rs_rule_prog"
  - id: writable_executable_mapping
    expression: mmap.protection & (PROT_WRITE | PROT_EXEC) == (PROT_WRITE | PROT_EXEC)
  - id: writable_memory_made_executable
    expression: mprotect.req_protection & VM_EXEC > 0 && mprotect.vm_protection & VM_WRITE > 0
  - id: file_opened_through_io_uring
    expression: io_uring.op == IORING_OP_OPENAT && io_uring.file.path == "{opened}"
  - id: filesystem_attached_with_new_api
    expression: mount.syscall == "move_mount" && mount.mountpoint.path == "{target}" && mount.fs_type == "tmpfs"
  - id: module_loaded
    expression: load_module.name != ""
  - id: module_unloaded
    expression: unload_module.name == "rsagent_test"
""")
    return policy


def test_rules_on_kernel_types_fire_and_approvers_drop_the_rest(tmp_path: Path, built_objects: None) -> None:
    target = tmp_path / "attached"
    target.mkdir()
    opened = tmp_path / "through-the-ring"
    opened.write_text("x")
    uring = uring_helper(tmp_path)
    agent = start_agent(_policy(tmp_path, target, opened), tmp_path)

    # bpf: one program loaded (fires), many map lookups (dropped in the kernel)
    fd = prog_load([MOV_R0_0, EXIT], 1, b"rs_rule_prog")        # BPF_PROG_TYPE_SOCKET_FILTER
    assert fd >= 0
    os.close(fd)
    mfd = map_create(2, b"rs_rule_map")                          # BPF_MAP_TYPE_ARRAY
    assert mfd >= 0
    for _ in range(200):
        map_lookup(mfd, 0)
    os.close(mfd)
    # mmap: a writable and executable mapping (fires); read-only ones are dropped
    wx = mmap_raw(PAGE, R | W | X, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    assert wx > 0
    for _ in range(100):
        munmap_raw(mmap_raw(PAGE, R, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS), PAGE)
    # mprotect: RW -> RX (fires); RW -> R (dropped)
    rw = mmap_raw(2 * PAGE, R | W, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for _ in range(100):
        assert mprotect_raw(rw + PAGE, PAGE, R) == 0
    assert mprotect_raw(rw, PAGE, R | X) == 0
    # io_uring: an open through the ring (fires); NOPs are dropped
    uring_pid, results = run_uring(uring, "open", str(opened))
    assert results[0] >= 0
    run_uring(uring, "nop", "8")
    # the new mount API
    ctx = fs_context("tmpfs", "rsagent-rule")
    m = ok("fsmount", ctx, FSMOUNT_CLOEXEC, 0)
    ok("move_mount", m, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)
    os.close(m)
    os.close(ctx)
    try:
        for rule in ("bpf_program_loaded", "writable_executable_mapping", "writable_memory_made_executable",
                     "file_opened_through_io_uring", "filesystem_attached_with_new_api"):
            alerts = agent.wait_for(rule)
            assert alerts, f"{rule} did not fire"
        me = os.getpid()
        assert {a["event"]["process"]["pid"] for a in agent.alerts() if a["rule_id"] != "file_opened_through_io_uring"
                } == {me}
        assert [a["event"]["process"]["pid"] for a in agent.alerts()
                if a["rule_id"] == "file_opened_through_io_uring"] == [uring_pid]
    finally:
        ok("umount2", target, 0)
        munmap_raw(wx, PAGE)
        munmap_raw(rw, 2 * PAGE)
    stderr = agent.stop()
    stats = counters(stderr)
    assert stats["bpf"]["dropped_approver"] >= 200          # the lookups
    assert stats["mmap"]["dropped_approver"] >= 100
    assert stats["mprotect"]["dropped_approver"] >= 100
    assert stats["io_uring"]["dropped_approver"] >= 8 + 2   # the NOPs and both setups
    for t in ("bpf", "mmap", "mprotect", "io_uring"):
        assert stats[t]["lost"] == 0
    if not Path("/proc/modules").exists():
        # this kernel has no modules: said at start, the other rules run
        assert "module_loaded" in stderr and "load_module" in stderr and "cannot fire" in stderr

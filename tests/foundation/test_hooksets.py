"""Hook set choice and restriction (pure Python: synthetic feature reports).

The real thing is the kernel matrix (tests/kernels/, `make test-kernels`):
this file pins the rules it relies on."""

from __future__ import annotations

import pytest

from agent.features import Feature, FeatureReport
from agent.hooksets import FENTRY, HOOK_SETS, KPROBE, TRACEPOINT, choose_hook_set, tracefs_has
from codegen.eventtypes import PRODUCED

DEV_KERNEL = ("tracepoint", "tp_btf", "raw_tp", "ctime_tp", "ringbuf", "helpers", "task_storage", "find_vma", "tc")
DEBIAN_61 = ("tracepoint", "tp_btf", "raw_tp", "kprobe", "fentry", "lsm", "ringbuf", "helpers",
             "task_storage", "find_vma", "security_path", "kprobe_security_path", "tc")


def report(available: tuple[str, ...]) -> FeatureReport:
    r = FeatureReport(kernel="test", arch="x86_64", libbpf="v1.1", btf=True, lockdown="none")
    for name in set(DEV_KERNEL) | set(DEBIAN_61):
        r.features[name] = Feature(name, name, name in available, "", "")
    return r


def everything(_tracepoint: str) -> bool:
    return True


def _host_lacks() -> set[str]:
    """Types whose tracepoints this host lacks (choose_hook_set asks tracefs:
    no module/* tracepoints on a kernel without modules)."""
    return {t.name for t in PRODUCED
            if t.lacking_tracepoints(tracefs_has)}


def test_fentry_is_preferred_where_it_loads() -> None:
    assert [h.name for h in HOOK_SETS] == ["fentry", "kprobe", "tracepoint"]
    assert choose_hook_set(report(DEBIAN_61)).name == "fentry"
    no_fentry = tuple(f for f in DEBIAN_61 if f not in ("fentry", "security_path"))
    choice = choose_hook_set(report(no_fentry))
    assert choice.name == "kprobe" and choice.hook_set is not None
    assert set(choice.hook_set.left_out) == _host_lacks()
    choice = choose_hook_set(report(DEV_KERNEL))
    assert choice.name == "tracepoint" and choice.hook_set is not None
    assert set(choice.hook_set.left_out) == _host_lacks()


def test_tracepoint_set_leaves_out_path_types_without_ctime_tracepoints() -> None:
    hs = TRACEPOINT.restricted(report(DEBIAN_61), everything)
    ctime_types = {"chmod", "chown", "mkdir", "rmdir", "unlink", "rename", "link", "utimes", "setxattr", "removexattr"}
    assert set(hs.left_out) == ctime_types
    assert {"open", "exec", "fork", "exit", "mount", "umount", "ptrace", "signal", "setuid",
            "chdir", "setns", "cgroup_write", "connect", "bind", "accept", "dns"} <= hs.supported_event_types()
    assert not ctime_types & hs.supported_event_types()
    assert hs.left_out["chmod"] == ("ctime_tp",) and "rs_ctime_ns_xchg" not in hs.programs_for(None)
    choice = choose_hook_set(report(DEBIAN_61), only="tracepoint")
    assert "left out on this kernel: chmod (needs ctime_tp)" in choice.reason


def test_fentry_set_needs_security_path_for_path_types() -> None:
    no_sp = tuple(f for f in DEBIAN_61 if f != "security_path")
    hs = FENTRY.restricted(report(no_sp), everything)
    assert "unlink" in hs.left_out and "open" in hs.supported_event_types()
    # utimes and the xattr types hook vfs_utimes / security_inode_*: always there
    assert {"utimes", "setxattr", "removexattr"} <= hs.supported_event_types()


def test_programs_of_absent_tracepoints_are_dropped() -> None:
    hs = FENTRY.restricted(report(DEBIAN_61), lambda tp: tp != "syscalls/sys_exit_fchmodat2")
    assert hs.absent == ("rs_exit_fchmodat2",)
    assert "rs_exit_fchmodat2" not in hs.programs_for(None) and "rs_exit_fchmodat" in hs.programs_for(None)


@pytest.mark.parametrize("hook_set", [FENTRY, TRACEPOINT])
def test_io_uring_submissions_from_the_tracepoints_name_on_each_kernel(hook_set) -> None:
    """io_uring_submit_sqe (<= 6.3) was renamed io_uring_submit_req (6.4): the program
    of the name the kernel has is loaded; with neither, the type is left out, saying why."""
    def kernel(*missing: str):
        return lambda tp: tp not in missing

    new = hook_set.restricted(report(DEBIAN_61 + DEV_KERNEL), kernel("io_uring/io_uring_submit_sqe"))
    assert "rs_io_uring_submit" in new.programs["io_uring"] and "rs_io_uring_submit_sqe" in new.absent
    old = hook_set.restricted(report(DEBIAN_61 + DEV_KERNEL), kernel("io_uring/io_uring_submit_req"))
    assert "rs_io_uring_submit_sqe" in old.programs["io_uring"] and "rs_io_uring_submit" in old.absent
    neither = hook_set.restricted(report(DEBIAN_61 + DEV_KERNEL),
                                  kernel("io_uring/io_uring_submit_req", "io_uring/io_uring_submit_sqe"))
    assert neither.left_out["io_uring"] == (
        "tracepoint io_uring/io_uring_submit_req or io_uring/io_uring_submit_sqe",)


def test_both_sets_share_the_exit_programs() -> None:
    """One record producer per syscall: documents cannot differ by hook set."""
    exits = {p for p in TRACEPOINT.programs_for(None) if p.startswith("rs_exit_")}
    for precise in (FENTRY, KPROBE):
        assert exits == {p for p in precise.programs_for(None) if p.startswith("rs_exit_")}
        assert precise.supported_event_types() == TRACEPOINT.supported_event_types()
        assert precise.variables == {"rs_precise_hooks": 1}
    assert not TRACEPOINT.variables
    # the two precise flavors hook the same functions
    assert [p.replace("rs_kprobe_", "rs_fentry_") for p in KPROBE.programs_for(None)] == FENTRY.programs_for(None)


def test_unknown_hook_set() -> None:
    with pytest.raises(KeyError, match="unknown hook set 'lsm'"):
        choose_hook_set(report(DEBIAN_61), only="lsm")


def test_every_program_exists_in_the_object(built_objects: None) -> None:
    from agent.libbpf.object import BpfObject
    from agent.objects import object_path
    from agent.runtime import COMPAT_COUNTER

    with BpfObject(object_path("probe.bpf.o")) as obj:
        for hs in HOOK_SETS:
            missing = set(hs.programs_for(None)) - set(obj.programs)
            assert not missing, f"{hs.name}: {sorted(missing)} not in probe.bpf.o"
        # and nothing in the object that no hook set uses (dead programs) but
        # the opt-in compat counter (--count-compat-syscalls)
        used = {p for hs in HOOK_SETS for p in hs.programs_for(None)} | {COMPAT_COUNTER}
        assert set(obj.programs) - used == set()


def test_exit_programs_are_the_tables_syscalls() -> None:
    """Each syscall of the table has its sys_exit program in every set, and
    every exit program is a syscall of the table."""
    from codegen.eventtypes import PRODUCED, syscalls_of

    for hs in HOOK_SETS:
        for t in PRODUCED:
            assert {s.program for s in syscalls_of(t)} <= set(hs.programs[t.name]), (hs.name, t.name)


def test_dns_is_left_out_without_tc_classifiers() -> None:
    for available in (DEV_KERNEL, DEBIAN_61):
        choice = choose_hook_set(report(tuple(f for f in available if f != "tc")))
        assert choice.hook_set is not None
        left_out = choice.hook_set.left_out
        assert left_out["dns"] == ("tc",) and set(left_out) == {"dns"} | _host_lacks()
        assert "connect" in choice.hook_set.supported_event_types()


def test_the_sets_to_try_default_to_every_usable_one_in_order() -> None:
    from agent.hooksets import choose_hook_sets

    choice = choose_hook_sets(report(DEBIAN_61))
    assert choice.name == "fentry" and [h.name for h in choice.fallbacks] == ["kprobe", "tracepoint"]
    choice = choose_hook_sets(report(DEV_KERNEL))
    assert choice.name == "tracepoint" and choice.fallbacks == ()
    assert choose_hook_sets(report(())).hook_set is None


def test_an_explicit_list_is_tried_in_its_order_even_where_the_probe_says_no(
        caplog: pytest.LogCaptureFixture) -> None:
    from agent.hooksets import choose_hook_sets, parse_hook_sets

    choice = choose_hook_sets(report(DEV_KERNEL), parse_hook_sets("fentry,tracepoint"))
    assert choice.name == "fentry" and [h.name for h in choice.fallbacks] == ["tracepoint"]
    assert choice.hook_set is not None and "open" in choice.hook_set.supported_event_types()
    assert "then, if it fails to load or attach: tracepoint" in choice.reason
    assert "--hook-set fentry: the feature probe found no fentry on this kernel" in caplog.text
    choice = choose_hook_sets(report(DEBIAN_61), ("tracepoint", "kprobe"))
    assert choice.name == "tracepoint" and [h.name for h in choice.fallbacks] == ["kprobe"]


def test_hook_set_lists_are_checked() -> None:
    from agent.hooksets import parse_hook_sets

    assert parse_hook_sets(" kprobe , tracepoint") == ("kprobe", "tracepoint")
    with pytest.raises(ValueError, match="unknown hook set 'lsm'"):
        parse_hook_sets("fentry,lsm")
    with pytest.raises(ValueError, match="unknown hook set ''"):
        parse_hook_sets("fentry,")
    with pytest.raises(ValueError, match="hook set tracepoint named twice"):
        parse_hook_sets("tracepoint,tracepoint")

"""Hook sets: which BPF programs implement each event type on a kernel.

A hook set maps every event type to the programs (in build/ebpf/probe.bpf.o)
that produce it. The agent chooses one from the feature probe:

- ``tracepoint``: syscall-exit tracepoints and BTF tracepoints only. Works on
  kernels without kprobes/fentry/LSM (the development kernel). Arguments come
  from the task's saved user registers at syscall exit; objects from the
  returned fd or, for path-based calls, from the inode ctime tracepoints.

Kernels with fentry/kprobes offer more precise hooks (the VFS functions
themselves, e.g. security_path_* with the struct path the kernel resolved);
a hook set for them is registered here when its programs exist in the
object, and preferred when the probe finds its hook kind available.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .features import FeatureReport


@dataclass(frozen=True)
class HookSet:
    name: str
    requires: tuple[str, ...]          # feature names that must be available
    programs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""

    def programs_for(self, event_types: set[str] | None = None) -> list[str]:
        names: list[str] = []
        for event_type, progs in sorted(self.programs.items()):
            if event_types is None or event_type in event_types:
                names += [p for p in progs if p not in names]
        return names

    def supported_event_types(self) -> set[str]:
        return set(self.programs)


_CTIME = ("rs_ctime_ns_xchg", "rs_ctime_xchg_skip", "rs_inode_set_ctime")

TRACEPOINT = HookSet(
    name="tracepoint",
    requires=("tracepoint", "tp_btf", "ringbuf", "helpers"),
    description="syscall-exit tracepoints + BTF tracepoints (no kprobes/fentry/LSM needed)",
    programs={
        "open": ("rs_exit_open", "rs_exit_openat", "rs_exit_openat2", "rs_exit_creat"),
        # File integrity: the sys_exit program of every syscall variant, and
        # for path-based calls the ctime tracepoints that name their objects
        # (ebpf/include/fim.h). Those capture only for the types in the
        # loader's rs_event_mask, so a type's capture never outlives its exit.
        "chmod": ("rs_exit_chmod", "rs_exit_fchmod", "rs_exit_fchmodat", "rs_exit_fchmodat2", *_CTIME),
        "chown": ("rs_exit_chown", "rs_exit_fchown", "rs_exit_lchown", "rs_exit_fchownat", *_CTIME),
        "mkdir": ("rs_exit_mkdir", "rs_exit_mkdirat", *_CTIME),
        "rmdir": ("rs_exit_rmdir", "rs_exit_unlinkat", *_CTIME),
        "unlink": ("rs_exit_unlink", "rs_exit_unlinkat", *_CTIME),
        "rename": ("rs_exit_rename", "rs_exit_renameat", "rs_exit_renameat2", *_CTIME),
        "link": ("rs_exit_link", "rs_exit_linkat", *_CTIME),
        "utimes": ("rs_exit_utime", "rs_exit_utimes", "rs_exit_utimensat", "rs_exit_futimesat", *_CTIME),
        "setxattr": ("rs_exit_setxattr", "rs_exit_lsetxattr", "rs_exit_fsetxattr", "rs_exit_setxattrat", *_CTIME),
        "removexattr": ("rs_exit_removexattr", "rs_exit_lremovexattr", "rs_exit_fremovexattr",
                        "rs_exit_removexattrat", *_CTIME),
        "mount": ("rs_exit_mount",),
        "umount": ("rs_exit_umount",),
        "exec": ("rs_sched_exec",),
        "fork": ("rs_sched_fork",),
        "exit": ("rs_sched_exit",),
    },
)

# In order of preference: the first whose requirements the kernel meets wins.
HOOK_SETS: tuple[HookSet, ...] = (TRACEPOINT,)


@dataclass(frozen=True)
class Choice:
    name: str
    reason: str
    hook_set: HookSet | None


def choose_hook_set(report: FeatureReport) -> Choice:
    missing_all = []
    for hs in HOOK_SETS:
        missing = [r for r in hs.requires if not report.has(r)]
        if not missing:
            precise = [k for k in ("fentry", "lsm", "kprobe") if report.has(k)]
            note = "" if precise else "; kprobe, fentry and lsm are unavailable on this kernel"
            return Choice(hs.name, hs.description + note, hs)
        missing_all.append(f"{hs.name} needs {', '.join(missing)}")
    return Choice("none", "no usable hook set: " + "; ".join(missing_all), None)


def by_name(name: str) -> HookSet:
    for hs in HOOK_SETS:
        if hs.name == name:
            return hs
    raise KeyError(f"unknown hook set {name!r} (known: {', '.join(h.name for h in HOOK_SETS)})")

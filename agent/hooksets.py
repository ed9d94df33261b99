"""Hook sets: which BPF programs implement each event type on a kernel.

A hook set maps every event type to the programs (in build/ebpf/probe.bpf.o)
that produce it. The agent chooses one from the feature probe, in the order
of ``HOOK_SETS`` (the first whose requirements the kernel meets wins):

- ``fentry`` (precise): fentry programs on the kernel functions that hand
  over the exact objects of a call (``vfs_open``'s struct path, ...), paired
  with the syscall-exit programs of the ``tracepoint`` set, which read the
  return value and emit the record. Needs fentry/fexit trampolines (kernels
  with BTF and CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS: standard
  distribution kernels; not the development kernel).
- ``kprobe``: the same captures as kprobes, for kernels with kprobes but
  without fentry trampolines (the same bodies, ebpf/hooks/precise.h).
- ``tracepoint``: syscall-exit tracepoints and BTF tracepoints only. Works on
  kernels without kprobes/fentry/LSM (the development kernel). Arguments come
  from the task's saved user registers at syscall exit; objects from the
  returned fd.

All produce the same records (ebpf/include/events.h) through the same
syscall-exit programs, decoded by the same code: an event document has the
same shape whichever set produced it.

An event type may need more than its set's ``requires`` (``type_requires``,
e.g. a tracepoint that only newer kernels have). On a kernel that lacks it
the chosen set is *restricted*: the type is left out (and said so), the
rest of the set is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .features import FeatureReport


@dataclass(frozen=True)
class HookSet:
    name: str
    requires: tuple[str, ...]          # feature names that must be available
    programs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""
    # event type -> features it needs besides `requires`
    type_requires: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # program -> its tracepoint ("group/name"): left out where the kernel lacks it
    optional: dict[str, str] = field(default_factory=dict)
    # const volatile globals of the object the loader sets for this set
    variables: dict[str, int] = field(default_factory=dict)
    # filled by restricted(): event type -> the features this kernel lacks for it
    left_out: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # filled by restricted(): optional programs whose tracepoint this kernel lacks
    absent: tuple[str, ...] = ()

    def programs_for(self, event_types: set[str] | None = None) -> list[str]:
        names: list[str] = []
        for event_type, progs in sorted(self.programs.items()):
            if event_types is None or event_type in event_types:
                names += [p for p in progs if p not in names]
        return names

    def supported_event_types(self) -> set[str]:
        return set(self.programs)

    def missing(self, report: FeatureReport) -> list[str]:
        """The set's own requirements this kernel does not meet."""
        return [r for r in self.requires if not report.has(r)]

    def restricted(self, report: FeatureReport,
                   tracepoint_exists: Callable[[str], bool] | None = None) -> HookSet:
        """This set without the event types whose extra requirements the
        kernel does not meet (``left_out`` says which and why), and without
        the optional programs whose tracepoint it lacks (``absent``)."""
        exists = tracepoint_exists or tracefs_has
        absent = tuple(sorted(p for p, tp in self.optional.items() if not exists(tp)))
        keep: dict[str, tuple[str, ...]] = {}
        left_out: dict[str, tuple[str, ...]] = {}
        for event_type, progs in self.programs.items():
            lacking = tuple(r for r in self.type_requires.get(event_type, ()) if not report.has(r))
            if lacking:
                left_out[event_type] = lacking
            else:
                keep[event_type] = tuple(p for p in progs if p not in absent)
        return replace(self, programs=keep, left_out=left_out, absent=absent)


TRACEFS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))


def tracefs_has(tracepoint: str) -> bool:
    """Does the kernel have tracepoint "group/name"? (tracefs; when it is not
    mounted, assume yes: the attach then says what is wrong.)"""
    roots = [r for r in TRACEFS if (r / "events").is_dir()]
    if not roots:
        return True
    return any((r / "events" / tracepoint).is_dir() for r in roots)


_CTIME = ("rs_ctime_ns_xchg", "rs_ctime_xchg_skip", "rs_inode_set_ctime")
_OPEN_EXIT = ("rs_exit_open", "rs_exit_openat", "rs_exit_openat2", "rs_exit_creat")
# The sys_exit program of every syscall variant, shared by every set: it
# reads the arguments and the return value and emits the record; the
# objects come from the set's capture programs (ebpf/include/fim.h).
_EXITS = {
    "chmod": ("rs_exit_chmod", "rs_exit_fchmod", "rs_exit_fchmodat", "rs_exit_fchmodat2"),
    "chown": ("rs_exit_chown", "rs_exit_fchown", "rs_exit_lchown", "rs_exit_fchownat"),
    "mkdir": ("rs_exit_mkdir", "rs_exit_mkdirat"),
    "rmdir": ("rs_exit_rmdir", "rs_exit_unlinkat"),
    "unlink": ("rs_exit_unlink", "rs_exit_unlinkat"),
    "rename": ("rs_exit_rename", "rs_exit_renameat", "rs_exit_renameat2"),
    "link": ("rs_exit_link", "rs_exit_linkat"),
    "utimes": ("rs_exit_utime", "rs_exit_utimes", "rs_exit_utimensat", "rs_exit_futimesat"),
    "setxattr": ("rs_exit_setxattr", "rs_exit_lsetxattr", "rs_exit_fsetxattr", "rs_exit_setxattrat"),
    "removexattr": ("rs_exit_removexattr", "rs_exit_lremovexattr", "rs_exit_fremovexattr",
                    "rs_exit_removexattrat"),
}
_PATH_TYPES = tuple(_EXITS)
_SHARED = {
    "mount": ("rs_exit_mount",),
    "umount": ("rs_exit_umount",),
    "exec": ("rs_sched_exec",),
    "fork": ("rs_sched_fork",),
    "exit": ("rs_sched_exit",),
}
# Syscalls younger than the oldest kernel supported: their programs are left
# out where the tracepoint does not exist (fchmodat2: 6.6, *xattrat: 6.13).
_YOUNG_SYSCALLS = {
    "rs_exit_fchmodat2": "syscalls/sys_exit_fchmodat2",
    "rs_exit_setxattrat": "syscalls/sys_exit_setxattrat",
    "rs_exit_removexattrat": "syscalls/sys_exit_removexattrat",
}

TRACEPOINT = HookSet(
    name="tracepoint",
    requires=("tracepoint", "tp_btf", "ringbuf", "helpers"),
    description="syscall-exit tracepoints + BTF tracepoints (no kprobes/fentry/LSM needed)",
    programs={
        "open": _OPEN_EXIT,
        # Path-based calls get their objects from the ctime tracepoints, which
        # capture only for the types in the loader's rs_event_mask, so a
        # type's capture never outlives its exit.
        **{t: (*progs, *_CTIME) for t, progs in _EXITS.items()},
        **_SHARED,
    },
    type_requires={t: ("ctime_tp",) for t in _PATH_TYPES},
    optional=_YOUNG_SYSCALLS,
)

# Programs that hand over each path-based call's objects (ebpf/hooks/precise.h,
# one body, a fentry and a kprobe flavor); the exit programs are the
# tracepoint set's.
_CAPTURE = {
    "open": ("vfs_open",),
    "chmod": ("path_chmod",),
    "chown": ("path_chown",),
    "mkdir": ("path_mkdir",),
    "rmdir": ("path_rmdir",),
    "unlink": ("path_unlink",),
    "rename": ("path_rename",),
    "link": ("path_link",),
    "utimes": ("vfs_utimes",),
    "setxattr": ("inode_setxattr", "mnt_want_write"),
    "removexattr": ("inode_removexattr", "mnt_want_write"),
}


def _precise(flavor: str, requires: tuple[str, ...], security_path: str, description: str) -> HookSet:
    return HookSet(
        name=flavor,
        requires=requires,
        description=description,
        programs={
            # vfs_open names the file an open reached even when the open then
            # fails (LSM denial, a FIFO without reader...); the exit program emits.
            "open": (*(f"rs_{flavor}_{c}" for c in _CAPTURE["open"]), *_OPEN_EXIT),
            **{t: (*(f"rs_{flavor}_{c}" for c in _CAPTURE[t]), *progs) for t, progs in _EXITS.items()},
            **_SHARED,
        },
        # security_path_* exist with CONFIG_SECURITY_PATH (Debian, Ubuntu, RHEL...)
        type_requires={t: (security_path,) for t in _PATH_TYPES if _CAPTURE[t][0].startswith("path_")},
        optional=_YOUNG_SYSCALLS,
        # the exit programs read what the captures kept (ebpf/include/call_ctx.h, fim_precise.h)
        variables={"rs_precise_hooks": 1},
    )


FENTRY = _precise("fentry", ("fentry", "tracepoint", "tp_btf", "ringbuf", "helpers", "task_storage"),
                  "security_path",
                  "fentry on the VFS/LSM functions that hold the call's objects + syscall-exit tracepoints")
KPROBE = _precise("kprobe", ("kprobe", "tracepoint", "tp_btf", "ringbuf", "helpers", "task_storage"),
                  "kprobe_security_path",
                  "kprobes on the VFS/LSM functions that hold the call's objects + syscall-exit tracepoints "
                  "(fentry unavailable)")

# In order of preference: the first whose requirements the kernel meets wins.
HOOK_SETS: tuple[HookSet, ...] = (FENTRY, KPROBE, TRACEPOINT)


@dataclass(frozen=True)
class Choice:
    name: str
    reason: str
    hook_set: HookSet | None


def _left_out_note(hs: HookSet) -> str:
    if not hs.left_out:
        return ""
    parts = [f"{t} (needs {', '.join(req)})" for t, req in sorted(hs.left_out.items())]
    return "; left out on this kernel: " + ", ".join(parts)


def choose_hook_set(report: FeatureReport, only: str | None = None) -> Choice:
    """The preferred hook set this kernel supports, restricted to it.

    ``only`` names one set to consider (tests and the kernel matrix run a
    less preferred set on purpose)."""
    missing_all = []
    for hs in HOOK_SETS:
        if only is not None and hs.name != only:
            continue
        missing = hs.missing(report)
        if not missing:
            chosen = hs.restricted(report)
            precise = [k for k in ("fentry", "lsm", "kprobe") if report.has(k)]
            note = "" if precise else "; kprobe, fentry and lsm are unavailable on this kernel"
            return Choice(hs.name, hs.description + note + _left_out_note(chosen), chosen)
        missing_all.append(f"{hs.name} needs {', '.join(missing)}")
    if only is not None and not missing_all:
        raise KeyError(f"unknown hook set {only!r} (known: {', '.join(h.name for h in HOOK_SETS)})")
    return Choice("none", "no usable hook set: " + "; ".join(missing_all), None)


def by_name(name: str) -> HookSet:
    for hs in HOOK_SETS:
        if hs.name == name:
            return hs
    raise KeyError(f"unknown hook set {name!r} (known: {', '.join(h.name for h in HOOK_SETS)})")

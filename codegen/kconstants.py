"""SECL constant families taken from the kernel's own headers.

Each family is declared here by the header(s) defining it and by which of
their macros belong to it; nothing is copied by hand:

- ``make kheaders`` (ci/kheaders.py) reads the families' values from
  Debian's linux-libc-dev / linux-headers into vmlinux/<arch>/kconsts.json
  (``families``);
- ``make generate`` (codegen/tablegen.py) writes them into
  codegen/kconsts_secl.py (generated, checked current by a test), which the
  installed package reads: kconsts.json is not shipped with it;
- codegen/constants.py adds them to the SECL constants (``FAMILIES``).

Selecting a family's macros: ``pattern`` (a full match on the name) minus
``exclude``; values that are not literal integer expressions (aliases of
another macro of the same headers are followed) are left out. Headers that
write a family's sub-values as ``# define`` (linux/prctl.h: the arguments of
an option) are read with ``top_level_only``.

Families that are not plain macros name where they are instead: ``enum``
(the enumerators of that enum, e.g. bpf_cmd, values computed as C does,
up to its sentinel: ``__MAX_*``, ``*_LAST``), ``bpf_helpers`` (the helper
list, ``FN(name, id)`` of ___BPF_FUNC_MAPPER: ``BPF_<NAME>`` = id),
``vma_flags`` (``VM_<NAME>`` = 1 << the bit DECLARE_VMA_BIT gives it, 7.x;
literal ``#define VM_*`` before). Macros may use a header's enumerators
(IOSQE_FIXED_FILE is 1 << IOSQE_FIXED_FILE_BIT).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class KernelFamily:
    key: str                      # kconsts.json / kconsts_secl.py key
    title: str                    # as listed in docs/fields.md
    headers: tuple[str, ...]      # looked up in the UAPI headers first, then the kernel's own
    pattern: str                  # a full match on the macro's name
    exclude: str | None = None    # a full match: not part of the family
    top_level_only: bool = False  # `# define` lines are sub-values, not members
    bit: bool = False             # the header gives bit numbers: the SECL value is 1 << n
    enum: str | None = None       # the members are this enum's enumerators (matching pattern)
    bpf_helpers: bool = False     # the members are the BPF helper list (___BPF_FUNC_MAPPER)
    vma_flags: bool = False       # the members are VM_* from DECLARE_VMA_BIT (or literal #defines)


KERNEL_FAMILIES: tuple[KernelFamily, ...] = (
    KernelFamily("signals", "signals (SIG*)", ("asm/signal.h",), r"SIG[A-Z0-9]+",
                 exclude=r"SIGSTKSZ|SIGRTMAX"),
    KernelFamily("capabilities", "capabilities (CAP_*, bit masks)", ("linux/capability.h",), r"CAP_[A-Z_]+",
                 exclude=r"CAP_LAST_CAP", bit=True),
    KernelFamily("ptrace", "ptrace requests (PTRACE_*)", ("linux/ptrace.h", "asm/ptrace-abi.h"), r"PTRACE_\w+",
                 # options, event codes and PTRACE_GET_SYSCALL_INFO's values are not requests
                 exclude=r"PTRACE_(O_|EVENT|SYSCALL_INFO_|PEEKSIGINFO_SHARED)\w*"),
    KernelFamily("prctl", "prctl options (PR_*)", ("linux/prctl.h",), r"PR_\w+", top_level_only=True,
                 # written at the top level, but an argument of PR_SET_CFI
                 exclude=r"PR_CFI_BRANCH_LANDING_PADS"),
    KernelFamily("clone", "clone and namespace flags (CLONE_*)", ("linux/sched.h",), r"CLONE_\w+",
                 exclude=r"CLONE_ARGS_SIZE_\w+"),
    KernelFamily("memfd", "memfd_create flags (MFD_*)", ("linux/memfd.h",), r"MFD_[A-Z_]+",
                 # huge page sizes: encodings of linux/hugetlb_encode.h, passed with MFD_HUGETLB
                 exclude=r"MFD_HUGE_\w+"),
    KernelFamily("pipe_buf", "pipe buffer flags (PIPE_BUF_FLAG_*)", ("include/linux/pipe_fs_i.h",),
                 r"PIPE_BUF_FLAG_\w+"),
    # -- engineer B of issue 9: bpf, mprotect, io_uring --
    KernelFamily("bpf_cmd", "BPF commands (BPF_*)", ("linux/bpf.h",), r"BPF_\w+", enum="bpf_cmd"),
    KernelFamily("bpf_map_type", "BPF map types (BPF_MAP_TYPE_*)", ("linux/bpf.h",), r"BPF_MAP_TYPE_\w+",
                 enum="bpf_map_type"),
    KernelFamily("bpf_prog_type", "BPF program types (BPF_PROG_TYPE_*)", ("linux/bpf.h",), r"BPF_PROG_TYPE_\w+",
                 enum="bpf_prog_type"),
    KernelFamily("bpf_attach_type", "BPF attach types (BPF_*)", ("linux/bpf.h",), r"BPF_\w+",
                 enum="bpf_attach_type"),
    KernelFamily("bpf_helpers", "BPF helper functions (BPF_*)", ("linux/bpf.h",), r"BPF_\w+", bpf_helpers=True),
    # the low 32 bits only: the rest are per-architecture
    KernelFamily("vm_flags", "virtual memory flags (VM_*)", ("include/linux/mm.h",), r"VM_\w+", vma_flags=True,
                 exclude=r"VM_(ARCH|HIGH_ARCH)_\w+"),
    KernelFamily("io_uring_op", "io_uring opcodes (IORING_OP_*)", ("linux/io_uring.h",), r"IORING_OP_\w+",
                 enum="io_uring_op"),
    KernelFamily("io_uring_setup", "io_uring setup flags (IORING_SETUP_*)", ("linux/io_uring.h",),
                 r"IORING_SETUP_\w+"),
    KernelFamily("iosqe", "io_uring submission flags (IOSQE_*)", ("linux/io_uring.h",), r"IOSQE_[A-Z_]+",
                 exclude=r"IOSQE_\w+_BIT"),
)

BY_KEY: Mapping[str, KernelFamily] = MappingProxyType({f.key: f for f in KERNEL_FAMILIES})


def family_values(key: str) -> Mapping[str, int]:
    """The SECL values of a family (name -> value), in the header's order."""
    from .kconsts_secl import FAMILY_VALUES

    if key not in BY_KEY:
        raise KeyError(f"unknown kernel constant family {key!r} (known: {', '.join(BY_KEY)})")
    return MappingProxyType(FAMILY_VALUES[key])


def families_by_title() -> dict[str, Mapping[str, int]]:
    """Every family, keyed by its documentation title."""
    return {f.title: family_values(f.key) for f in KERNEL_FAMILIES}


__all__ = ["BY_KEY", "KERNEL_FAMILIES", "KernelFamily", "families_by_title", "family_values"]

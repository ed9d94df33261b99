"""SECL constant families from the kernel's headers (codegen/kconstants.py,
extracted by `make kheaders`, generated into codegen/kconsts_secl.py)."""

from __future__ import annotations

import pytest

from codegen import tablegen
from codegen.constants import CONSTANTS, FAMILIES, lookup
from codegen.kconstants import KERNEL_FAMILIES, family_values


def test_generated_module_is_current() -> None:
    assert tablegen.render_kconsts_secl() == tablegen.KCONSTS_SECL_PY.read_text(), "run python -m codegen.tablegen"


@pytest.mark.parametrize(("name", "value"), [
    # the Linux x86-64 ABI: these numbers never change
    ("SIGKILL", 9), ("SIGSTKFLT", 16), ("SIGPOLL", 29), ("SIGRTMIN", 32),
    ("CAP_CHOWN", 1 << 0), ("CAP_SYS_PTRACE", 1 << 19), ("CAP_SYS_ADMIN", 1 << 21), ("CAP_BPF", 1 << 39),
    ("PTRACE_TRACEME", 0), ("PTRACE_ATTACH", 16), ("PTRACE_GETREGS", 12), ("PTRACE_ARCH_PRCTL", 30),
    ("PTRACE_SEIZE", 0x4206),
    ("PR_SET_NAME", 15), ("PR_SET_SECCOMP", 22), ("PR_CAP_AMBIENT", 47), ("PR_SET_PTRACER", 0x59616D61),
    ("CLONE_NEWNS", 0x20000), ("CLONE_NEWUSER", 0x10000000), ("CLONE_NEWTIME", 0x80), ("CLONE_INTO_CGROUP", 1 << 33),
    ("MFD_CLOEXEC", 1), ("MFD_EXEC", 0x10),
    ("PIPE_BUF_FLAG_CAN_MERGE", 0x10),
])
def test_values_are_the_kernels(name: str, value: int) -> None:
    assert lookup(name) == value


@pytest.mark.parametrize("name", [
    "PR_SET_MM_START_CODE",    # `# define`: an argument of PR_SET_MM, not an option
    "PR_UNALIGN_NOPRINT",
    "PTRACE_O_TRACEFORK",      # an option of PTRACE_SETOPTIONS, not a request
    "PTRACE_EVENT_EXEC",
    "SIGSTKSZ",                # a size
    "SIGRTMAX",                # not a literal (_NSIG)
    "SIGLOST",                 # inside a comment in asm/signal.h
    "CAP_LAST_CAP",            # an alias
    "CLONE_ARGS_SIZE_VER0",
])
def test_what_is_not_a_family_member(name: str) -> None:
    assert lookup(name) is None


def test_every_family_is_in_the_constants_once() -> None:
    for fam in KERNEL_FAMILIES:
        values = family_values(fam.key)
        assert values and FAMILIES[fam.title] == values
        for name, value in values.items():
            assert CONSTANTS[name] == value, f"{name} is defined with another value by another family"
    assert len(family_values("capabilities")) == 41

"""The kernel-type calls of the differential workload (bpf, mmap, mprotect;
workload.py runs them in its own process, kernel_trials.py says what each
must produce). Each returns the syscall's return value (-errno on failure),
or None when it could not be made (a file that is gone): no event."""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Callable

PAGE = 4096
# x86-64 syscall numbers (stable ABI); the oracle uses the agent's constants
NR_MMAP, NR_MPROTECT, NR_MUNMAP, NR_BPF = 9, 10, 11, 321
BPF_CMDS = {"prog_load": 5, "prog_load_bad": 5, "map_create": 0, "get_next_id": 11, "bad_cmd": 9999}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_license = ctypes.create_string_buffer(b"GPL")
_insns = ctypes.create_string_buffer(struct.pack("<BBhi", 0xb7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0))


def _sc(nr: int, *args: int | ctypes.Array[ctypes.c_char]) -> int:
    conv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    ret = _libc.syscall(ctypes.c_long(nr), *conv)
    return -ctypes.get_errno() if ret == -1 else int(ret)


def bpf(kind: str) -> int:
    attr = bytearray(128)
    if kind in ("prog_load", "prog_load_bad"):
        # a socket filter returning 0; the bad one has no instructions (EINVAL)
        struct.pack_into("<IIQQ", attr, 0, 1, 2 if kind == "prog_load" else 0,
                         ctypes.addressof(_insns), ctypes.addressof(_license))
        attr[48:52] = b"rs_p"
    elif kind == "map_create":
        struct.pack_into("<IIIII", attr, 0, 2, 4, 8, 1, 0)   # an array: key 4, value 8, one entry
        attr[28:32] = b"rs_m"
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    ret = _sc(NR_BPF, BPF_CMDS[kind], buf, len(attr))
    if ret >= 0 and kind != "get_next_id":
        os.close(ret)
    return ret


def mmap(pages: int, prot: int, flags: int, path: str | None) -> int | None:
    fd = -1
    if path is not None:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return None
    try:
        ret = _sc(NR_MMAP, 0, pages * PAGE, prot, flags, fd, 0)
        if ret >= 0:
            _sc(NR_MUNMAP, ret, pages * PAGE)
        return ret
    finally:
        if fd >= 0:
            os.close(fd)


def mprotect(kind: str, pages: int, before: int, prot: int) -> int:
    """A fresh private anonymous mapping with protection `before`, changed to
    `prot`: at its start (ok), one byte in (unaligned: EINVAL), or after it
    was unmapped (ENOMEM)."""
    length = pages * PAGE
    addr = _sc(NR_MMAP, 0, length, before, 0x22, -1, 0)   # MAP_PRIVATE | MAP_ANONYMOUS
    assert addr >= 0, addr
    if kind == "unmapped":
        _sc(NR_MUNMAP, addr, length)
    ret = _sc(NR_MPROTECT, addr + (1 if kind == "unaligned" else 0), length, prot)
    if kind != "unmapped":
        _sc(NR_MUNMAP, addr, length)
    return ret


CALLS: dict[str, Callable[..., int | None]] = {"bpf": bpf, "mmap": mmap, "mprotect": mprotect}

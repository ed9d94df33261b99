"""Helpers for the kernel event tests: the real syscalls through libc's
``syscall()`` (numbers from the kernel headers: vmlinux/x86_64/kconsts.json),
the UAPI structs the calls take (bpf_attr, bpf_insn, mount_attr), and a
32-bit (compat) syscall through ``int $0x80``."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from codegen.tablegen import kconsts, syscall_nr

from agent.events.layout import layout

_L = layout()
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

HERE = Path(__file__).resolve().parent
AT_FDCWD = _L.const("RS_AT_FDCWD")
PAGE = mmap.PAGESIZE


def nr(name: str) -> int:
    return syscall_nr(name)


def nr32(name: str) -> int:
    """An i386 (compat) syscall number."""
    return int(kconsts()["syscalls_32"][name])


def _arg(a: Any) -> Any:
    if a is None:
        return ctypes.c_void_p(0)
    if isinstance(a, (str, os.PathLike)):
        return ctypes.c_char_p(os.fsencode(a))
    if isinstance(a, bytes):
        return ctypes.c_char_p(a)
    if isinstance(a, int):
        return ctypes.c_long(a)
    return a


def syscall(name: str, *args: Any) -> int:
    """The raw syscall: its return value, or -errno."""
    rc = libc.syscall(ctypes.c_long(nr(name)), *(_arg(a) for a in args))
    return -ctypes.get_errno() if rc == -1 else rc


def ok(name: str, *args: Any) -> int:
    rc = syscall(name, *args)
    assert rc >= 0, f"{name}{args}: {errno.errorcode.get(-rc, rc)}"
    return rc


def mine(col: Any, event_type: str, pid: int | None = None) -> list[dict[str, Any]]:
    pid = os.getpid() if pid is None else pid
    return [d for d in col.of_type(event_type) if d["process"]["pid"] == pid]


def assert_context(doc: dict[str, Any], pid: int | None = None) -> None:
    """The process context of an event the test process caused."""
    p = doc["process"]
    assert p["pid"] == (os.getpid() if pid is None else pid)
    assert p["uid"] == os.getuid() and p["gid"] == os.getgid() and p["euid"] == os.geteuid()
    assert p["ppid"] == (os.getppid() if pid is None else p["ppid"])
    assert p["file"].get("path"), p["file"]
    assert doc["timestamp"] > 0


# -- bpf ----------------------------------------------------------------------

class BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("regs", ctypes.c_uint8), ("off", ctypes.c_int16), ("imm", ctypes.c_int32)]


def call(helper: int) -> BpfInsn:
    return BpfInsn(0x85, 0, 0, helper)              # BPF_JMP | BPF_CALL, src_reg 0: a helper


MOV_R0_0 = BpfInsn(0xB7, 0, 0, 0)                   # BPF_ALU64 | BPF_MOV | BPF_K
EXIT = BpfInsn(0x95, 0, 0, 0)                       # BPF_JMP | BPF_EXIT


class ProgLoadAttr(ctypes.Structure):
    """The BPF_PROG_LOAD part of union bpf_attr (UAPI)."""

    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16), ("prog_ifindex", ctypes.c_uint32),
                ("expected_attach_type", ctypes.c_uint32), ("_rest", ctypes.c_uint8 * 64)]


class MapCreateAttr(ctypes.Structure):
    _fields_ = [("map_type", ctypes.c_uint32), ("key_size", ctypes.c_uint32), ("value_size", ctypes.c_uint32),
                ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32), ("inner_map_fd", ctypes.c_uint32),
                ("numa_node", ctypes.c_uint32), ("map_name", ctypes.c_char * 16), ("_rest", ctypes.c_uint8 * 96)]


class MapElemAttr(ctypes.Structure):
    _fields_ = [("map_fd", ctypes.c_uint32), ("_pad", ctypes.c_uint32), ("key", ctypes.c_uint64),
                ("value", ctypes.c_uint64), ("flags", ctypes.c_uint64), ("_rest", ctypes.c_uint8 * 96)]


_LICENSE = ctypes.create_string_buffer(b"GPL")


def prog_load(insns: list[BpfInsn], prog_type: int, name: bytes, attach_type: int = 0) -> int:
    arr = (BpfInsn * len(insns))(*insns)
    attr = ProgLoadAttr(prog_type=prog_type, insn_cnt=len(insns), insns=ctypes.addressof(arr),
                        license=ctypes.addressof(_LICENSE), prog_name=name, expected_attach_type=attach_type)
    return syscall("bpf", 5, ctypes.byref(attr), ctypes.sizeof(attr))   # BPF_PROG_LOAD


def map_create(map_type: int, name: bytes, key_size: int = 4, value_size: int = 8, max_entries: int = 4) -> int:
    attr = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size, max_entries=max_entries,
                         map_name=name)
    return syscall("bpf", 0, ctypes.byref(attr), ctypes.sizeof(attr))   # BPF_MAP_CREATE


def map_lookup(fd: int, key: int = 0) -> int:
    k = ctypes.c_uint32(key)
    v = ctypes.c_uint64(0)
    attr = MapElemAttr(map_fd=fd, key=ctypes.addressof(k), value=ctypes.addressof(v))
    return syscall("bpf", 1, ctypes.byref(attr), ctypes.sizeof(attr))   # BPF_MAP_LOOKUP_ELEM


# -- memory ---------------------------------------------------------------------

def mmap_raw(length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
    """mmap(2); the address, or -errno."""
    addr = libc.mmap(None, length, prot, flags, fd, offset)
    if addr in (None, ctypes.c_void_p(-1).value):
        return -ctypes.get_errno()
    return int(addr)


def munmap_raw(addr: int, length: int) -> None:
    assert libc.munmap(ctypes.c_void_p(addr), length) == 0


def mprotect_raw(addr: int, length: int, prot: int) -> int:
    return 0 if libc.mprotect(ctypes.c_void_p(addr), length, prot) == 0 else -ctypes.get_errno()


# -- the new mount API ------------------------------------------------------------

FSOPEN_CLOEXEC = 1          # linux/mount.h
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


def fs_context(fstype: str, source: str | None, create: bool = True) -> int:
    """fsopen + fsconfig: a filesystem context (its fd)."""
    fd = ok("fsopen", fstype, FSOPEN_CLOEXEC)
    if source is not None:
        ok("fsconfig", fd, FSCONFIG_SET_STRING, "source", source, 0)
    if create:
        ok("fsconfig", fd, FSCONFIG_CMD_CREATE, None, None, 0)
    return fd


# -- io_uring (a C helper: raw syscalls, no liburing) --------------------------

def uring_helper(tmp: Path) -> Path:
    exe = tmp / "uring"
    if not exe.exists():
        subprocess.run([shutil.which("gcc") or "gcc", "-O2", "-Wall", "-o", str(exe), str(HERE / "c" / "uring.c")],
                       check=True)
    return exe


def run_uring(exe: Path, *args: str) -> tuple[int, list[int]]:
    """Run the helper: (its pid, the completion results)."""
    out = subprocess.run([str(exe), *args], check=True, capture_output=True, text=True).stdout.split("\n")
    pid = int(out[0].split()[1])
    return pid, [int(line.split()[1]) for line in out[1:] if line.startswith("res ")]


# -- a 32-bit (compat) syscall: int $0x80 from this 64-bit process -----------------

# long f(long nr, long a1, long a2, long a3): i386 ABI eax, ebx, ecx, edx
_INT80 = bytes([
    0x53,                   # push rbx
    0x89, 0xF8,             # mov eax, edi
    0x89, 0xF3,             # mov ebx, esi
    0x48, 0x87, 0xCA,       # xchg rdx, rcx  (ecx = a2, edx = a3)
    0xCD, 0x80,             # int 0x80
    0x5B,                   # pop rbx
    0x48, 0x63, 0xC0,       # movsxd rax, eax
    0xC3,                   # ret
])
MAP_32BIT = 0x40


class Compat:
    """i386 syscalls from this process; their pointer arguments live below
    4 GiB (MAP_32BIT) so that 32-bit registers can hold them."""

    def __init__(self) -> None:
        code = mmap_raw(PAGE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        assert code > 0
        ctypes.memmove(code, _INT80, len(_INT80))
        assert mprotect_raw(code, PAGE, mmap.PROT_READ | mmap.PROT_EXEC) == 0
        self.code = code
        self._fn = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_long)(code)
        self.low = mmap_raw(PAGE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_32BIT)
        assert 0 < self.low < 1 << 32

    def string(self, s: str | os.PathLike[str]) -> int:
        raw = os.fsencode(s) + b"\0"
        assert len(raw) < PAGE
        ctypes.memmove(self.low, raw, len(raw))
        return self.low

    def __call__(self, nr32: int, a1: int = 0, a2: int = 0, a3: int = 0) -> int:
        return int(self._fn(nr32, a1, a2, a3))

    def close(self) -> None:
        libc.munmap(ctypes.c_void_p(self.code), PAGE)
        libc.munmap(ctypes.c_void_p(self.low), PAGE)

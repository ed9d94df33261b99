"""The kernel matrix's part for the kernel event types (bpf, mmap, mprotect,
io_uring, the new mount API, load_module, unload_module, cgroup_write): what the
workload's child does (``act``, before it execs) and what the documents
must say (``checks``), per hook set.

Modules: on a kernel with module support the child loads Debian's
tcp_vegas (a congestion control: nothing else changes) from its file with
a parameter, unloads it, loads it again from memory, unloads it, and makes
both calls fail once (a file that is no module: -ENOEXEC; a module that is
not loaded: -ENOENT). io_uring: the raw-syscall helper
(tests/kernel/c/uring.c), compiled on the host by matrix.py (a compiler
under emulation is too slow): its path comes in $RSAGENT_URING_HELPER.
"""

from __future__ import annotations

import ctypes
import lzma
import mmap
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

URING_ENV = "RSAGENT_URING_HELPER"
MODULE = "tcp_vegas"
MODULE_ARGS = "alpha=3"
CGROUP = "rsagent-matrix"
MODULE_INIT_COMPRESSED_FILE = 4      # linux/module.h
ENOEXEC, ENOENT, EINVAL = 8, 2, 22
PROG_NAME = b"rs_matrix"
HELPER_PRANDOM = 7                   # BPF_FUNC_get_prandom_u32: every kernel agrees
SOCKET_FILTER = 1                    # BPF_PROG_TYPE_SOCKET_FILTER
BPF_PROG_LOAD = 5
IORING_OP_OPENAT = 18
VM_WRITE = 2
MS_MOVE = 0x2000
# x86-64 syscall numbers (asm/unistd_64.h; stable ABI)
NR = {"bpf": 321, "init_module": 175, "finit_module": 313, "delete_module": 176, "fsopen": 430,
      "fsconfig": 431, "fsmount": 432, "move_mount": 429}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def _sys(name: str, *args: Any) -> int:
    conv = [ctypes.c_char_p(a) if isinstance(a, bytes) else ctypes.c_long(a) if isinstance(a, int) else a
            for a in args]
    rc = _libc.syscall(ctypes.c_long(NR[name]), *conv)
    return -ctypes.get_errno() if rc == -1 else rc


def module_file() -> Path | None:
    """The module's file for the running kernel, if it has module support."""
    if not Path("/proc/modules").exists():
        return None
    found = sorted(Path("/lib/modules", os.uname().release).glob(f"kernel/net/ipv4/{MODULE}.ko*"))
    return found[0] if found else None


# -- what the child does ----------------------------------------------------------

def act(top: Path) -> None:
    """The kernel types' syscalls (the child calls this before it execs)."""
    _bpf()
    _memory(top / "real" / "true")
    _mount_api(top / "real" / "mnt2")
    helper = os.environ.get(URING_ENV)
    if helper:
        proc = subprocess.run([helper, "open", str(top / "real" / "true")], capture_output=True, text=True)
        (top / "uring.pid").write_text(proc.stdout.split("\n")[0].split()[1] if proc.stdout else "0")
    _modules()
    _cgroup_write(top)


class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("regs", ctypes.c_uint8), ("off", ctypes.c_int16), ("imm", ctypes.c_int32)]


def _bpf() -> None:
    insns = (_Insn * 3)(_Insn(0x85, 0, 0, HELPER_PRANDOM), _Insn(0xB7, 0, 0, 0), _Insn(0x95, 0, 0, 0))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = (ctypes.c_uint8 * 128)()
    ctypes.c_uint32.from_buffer(attr, 0).value = SOCKET_FILTER
    ctypes.c_uint32.from_buffer(attr, 4).value = 3
    ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(insns)
    ctypes.c_uint64.from_buffer(attr, 16).value = ctypes.addressof(lic)
    ctypes.memmove(ctypes.addressof(attr) + 48, PROG_NAME, len(PROG_NAME))
    fd = _sys("bpf", BPF_PROG_LOAD, ctypes.byref(attr), 128)
    if fd >= 0:
        os.close(fd)


def _memory(exe: Path) -> None:
    page = mmap.PAGESIZE
    fd = os.open(exe, os.O_RDONLY)
    addr = _libc.mmap(None, page, mmap.PROT_READ | mmap.PROT_EXEC, mmap.MAP_PRIVATE, fd, 0)
    os.close(fd)
    if addr:
        _libc.munmap(addr, page)
    anon = _libc.mmap(None, page, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    if anon:
        _libc.mprotect(anon, page, mmap.PROT_READ | mmap.PROT_EXEC)
        _libc.munmap(anon, page)


def _mount_api(target: Path) -> None:
    target.mkdir(exist_ok=True)
    ctx = _sys("fsopen", b"tmpfs", 1)
    if ctx < 0:
        return
    _sys("fsconfig", ctx, 1, b"source", b"rsagent-matrix", 0)       # FSCONFIG_SET_STRING
    _sys("fsconfig", ctx, 6, None, None, 0)                         # FSCONFIG_CMD_CREATE
    m = _sys("fsmount", ctx, 1, 0)
    if m >= 0:
        if _sys("move_mount", m, b"", -100, os.fsencode(target), 4) == 0:   # MOVE_MOUNT_F_EMPTY_PATH
            _libc.umount2(os.fsencode(target), 0)
        os.close(m)
    os.close(ctx)


def _modules() -> None:
    path = module_file()
    if path is None:
        return
    compressed = path.suffix == ".xz"
    fd = os.open(path, os.O_RDONLY)
    _sys("finit_module", fd, MODULE_ARGS.encode(), MODULE_INIT_COMPRESSED_FILE if compressed else 0)
    os.close(fd)
    _sys("delete_module", MODULE.encode(), os.O_NONBLOCK)
    image = path.read_bytes()
    if compressed:
        image = lzma.decompress(image)
    buf = ctypes.create_string_buffer(image, len(image))
    _sys("init_module", buf, len(image), b"")
    _sys("delete_module", MODULE.encode(), os.O_NONBLOCK)
    fd = os.open("/bin/true", os.O_RDONLY)
    _sys("finit_module", fd, b"", 0)                                  # not a module: -ENOEXEC
    os.close(fd)
    _sys("delete_module", b"rsagent_no_such_module", os.O_NONBLOCK)  # -ENOENT


def cgroup2_root(top: Path) -> Path:
    """The guest's cgroup v2 hierarchy: its mount, or one the workload makes under ``top``."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "cgroup2":
            return Path(parts[1])
    root = top / "cgroup2"
    root.mkdir(exist_ok=True)
    if _libc.mount(b"none", os.fsencode(root), b"cgroup2", 0, None) != 0:
        raise OSError(ctypes.get_errno(), f"mount -t cgroup2 {root}")
    return root


def _cgroup_write(top: Path) -> None:
    """Move this process into a new cgroup by writing its pid to cgroup.procs, then back."""
    root = cgroup2_root(top)
    (top / "cgroup2.root").write_text(str(root))
    made = root / CGROUP
    made.mkdir(exist_ok=True)
    home = Path("/proc/self/cgroup").read_text().split("0::", 1)[1].split("\n")[0]
    (made / "cgroup.procs").write_text(str(os.getpid()))
    (root / home.lstrip("/") / "cgroup.procs").write_text(str(os.getpid()))
    made.rmdir()


# -- what must come out ------------------------------------------------------------

Check = tuple[str, str, bool, str]   # name, event type, ok, detail


def checks(mine: Callable[[str], list[Doc]], docs: list[Doc], top: Path, types: set[str],
           *, precise: bool) -> list[Check]:
    out: list[Check] = []
    real = top / "real"

    def one(name: str, event_type: str, pred: Callable[[Doc], bool], what: str, pool: list[Doc] | None = None) -> None:
        if event_type not in types:
            return
        candidates = mine(event_type) if pool is None else pool
        hits = [d for d in candidates if pred(d[event_type])]
        seen = [_brief(d[event_type]) for d in candidates][:6]
        out.append((name, event_type, bool(hits), f"expected {what}; seen: {seen}"))

    one("bpf: program loaded, named from the kernel, helpers from its code", "bpf",
        lambda b: b["cmd"] == BPF_PROG_LOAD and b["retval"] >= 0 and b.get("prog", {}).get("name") == "rs_matrix"
        and b["prog"].get("source") == "kernel" and HELPER_PRANDOM in b["prog"].get("helpers", []),
        "BPF_PROG_LOAD of rs_matrix, prog.source kernel, helper 7")
    one("mmap: file-backed executable mapping names the file", "mmap",
        lambda m: m["protection"] == mmap.PROT_READ | mmap.PROT_EXEC and m.get("file", {}).get("path") == f"{real}/true",
        f"PROT_READ|PROT_EXEC of {real}/true")
    vm_source = "security_file_mprotect" if precise else "find_vma"
    one("mprotect: writable memory made executable, protection before the call", "mprotect",
        lambda m: m["req_protection"] == mmap.PROT_READ | mmap.PROT_EXEC and m.get("vm_protection", 0) & VM_WRITE
        and m.get("vm_source") == vm_source and "file" not in m,
        f"req PROT_READ|PROT_EXEC, vm_protection with VM_WRITE, vm_source {vm_source}")
    one("mount: fsmount, detached, type and source from the context", "mount",
        lambda m: m.get("syscall") == "fsmount" and m["retval"] >= 0 and m["detached"] and m["fs_type"] == "tmpfs"
        and m["source"]["path"] == "rsagent-matrix", "fsmount of tmpfs rsagent-matrix")
    one("mount: move_mount attaches it, mount point walked in the kernel", "mount",
        lambda m: m.get("syscall") == "move_mount" and m["retval"] == 0 and m["flags"] == MS_MOVE
        and m["mountpoint"]["path"] == f"{real}/mnt2" and m["mountpoint"]["path_source"] == "kernel",
        f"move_mount to {real}/mnt2, path_source kernel")
    pid_file = top / "uring.pid"
    if pid_file.exists():
        upid = int(pid_file.read_text() or 0)
        pool = [d for d in docs if d["type"] == "io_uring" and d["process"]["pid"] == upid]
        one("io_uring: setup", "io_uring", lambda u: u["action"] == "setup" and u["retval"] >= 0, "a setup", pool)
        one("io_uring: an open submitted through the ring, its path", "io_uring",
            lambda u: u["action"] == "submit" and u["op"] == IORING_OP_OPENAT
            and u.get("file", {}).get("path") == f"{real}/true", f"IORING_OP_OPENAT of {real}/true", pool)
    root_file = top / "cgroup2.root"
    if root_file.exists():
        made = os.path.realpath(Path(root_file.read_text()) / CGROUP)
        moved_itself = [d for d in mine("cgroup_write") if d["cgroup_write"]["pid"] == d["process"]["pid"]] \
            if "cgroup_write" in types else []
        one("cgroup_write: a write to cgroup.procs moved the writer, the cgroup's directory", "cgroup_write",
            lambda c: c.get("file", {}).get("path") == made, f"the writer's pid moved to {made}", moved_itself)
    path = module_file()
    if path is not None:
        one("load_module: from its file, name from the kernel, its parameters", "load_module",
            lambda m: m["name"] == MODULE and m["retval"] == 0 and not m["loaded_from_memory"]
            and m.get("file", {}).get("path") == os.path.realpath(path) and m["args"] == MODULE_ARGS,
            f"{MODULE} from {os.path.realpath(path)} with {MODULE_ARGS}")  # merged /usr: /lib is usr/lib
        one("load_module: from memory", "load_module",
            lambda m: m["name"] == MODULE and m["retval"] == 0 and m["loaded_from_memory"] and "file" not in m,
            f"{MODULE} from memory")
        one("load_module: not a module", "load_module",
            lambda m: m["retval"] == -ENOEXEC and m.get("file", {}).get("path") in ("/bin/true", "/usr/bin/true"),
            "-ENOEXEC for /bin/true")
        one("unload_module", "unload_module", lambda m: m["name"] == MODULE and m["retval"] == 0, f"{MODULE}, retval 0")
        one("unload_module: not loaded", "unload_module",
            lambda m: m["name"] == "rsagent_no_such_module" and m["retval"] == -ENOENT, "-ENOENT")
    return out


def _brief(body: Doc) -> Doc:
    brief = {k: v for k, v in body.items() if k in ("cmd", "retval", "name", "syscall", "protection", "req_protection",
                                                    "vm_source", "action", "op", "loaded_from_memory", "args")}
    if isinstance(body.get("file"), dict) and "path" in body["file"]:
        brief["file"] = body["file"]["path"]
    return brief

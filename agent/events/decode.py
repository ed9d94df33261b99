"""Ring-buffer records -> typed records: the decode stage (pure).

Decoding reads a record through cffi's view of ebpf/include/events.h and
returns a Python object holding its values (ints, byte strings): no I/O, no
lookups, nothing but the bytes. It runs inside the ring buffer's callback,
so that the buffer's memory can be released at once; everything that needs
the host's state (mounts, users, the process cache, /proc) happens after,
in the resolve stage (agent/events/resolve.py).

Records dispatch on the common header's ``type`` through a registry built
from the event-type table (codegen/eventtypes.py): each type names its
record struct, each struct has one decode function here. A record that is
too short, of an unknown type, or that its decoder cannot read is counted
under a reason in ``Decoder.errors`` and skipped: a decode error never
stops the read loop.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codegen.eventtypes import PRODUCED

from ..process.model import Credentials, TaskMeta
from .layout import Layout

log = logging.getLogger(__name__)


class DecodeError(ValueError):
    """A record that does not match its declared layout."""


@dataclass(frozen=True, slots=True)
class Header:
    """struct rs_event_header, with the type's name."""

    type: str
    size: int
    timestamp: int          # CLOCK_BOOTTIME ns
    pid: int
    tid: int
    cpu: int
    flags: int


@dataclass(frozen=True, slots=True)
class TaskContext:
    """struct rs_proc_ctx: the calling task when the event happened."""

    ppid: int
    uid: int
    gid: int
    euid: int
    egid: int
    fsuid: int
    fsgid: int
    cap_effective: int
    cap_permitted: int
    cgroup_id: int
    start_boot_ns: int
    comm: str

    @property
    def creds(self) -> Credentials:
        return Credentials(self.uid, self.gid, self.euid, self.egid, self.fsuid, self.fsgid,
                           self.cap_effective, self.cap_permitted)


@dataclass(frozen=True, slots=True)
class FileObj:
    """struct rs_file: a file resolved from kernel objects (or nothing)."""

    inode: int = 0
    ctime_ns: int = 0
    mtime_ns: int = 0
    mount_id: int = 0
    dev: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    nlink: int = 0
    flags: int = 0
    path: bytes = b""
    fstype: str = ""


NO_FILE = FileObj()


@dataclass(frozen=True, slots=True)
class FileRecord:
    """struct rs_file_event: open and the other file-integrity types."""

    hdr: Header
    task: TaskContext
    file: FileObj
    base: FileObj
    dest: FileObj
    base2: FileObj
    retval: int
    syscall_nr: int
    flags: int
    mode: int
    dirfd: int
    dirfd2: int
    uid: int
    gid: int
    fim_flags: int
    req_path: bytes
    req_path2: bytes
    xattr_name: bytes
    fs_type: bytes
    root: bytes
    parent_inodes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ExecRecord:
    """struct rs_exec_event."""

    hdr: Header
    task: TaskContext
    file: FileObj
    interpreter: FileObj
    meta: TaskMeta
    old_tid: int
    argc: int
    envc: int
    args_flags: int
    filename: bytes
    argv: tuple[str, ...]
    envp: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class ForkRecord:
    """struct rs_fork_event (hdr.pid/tid: the child)."""

    hdr: Header
    task: TaskContext           # the parent, the caller
    child: TaskMeta
    child_pid: int
    child_tid: int
    parent_pid: int
    parent_tid: int
    child_start_time: int
    parent_start_time: int


@dataclass(frozen=True, slots=True)
class ExitRecord:
    """struct rs_exit_event."""

    hdr: Header
    task: TaskContext
    exit_code: int              # wait status


# -- engineer B (issue 9): modules, bpf, memory, io_uring --------------------

@dataclass(frozen=True, slots=True)
class ModuleRecord:
    """struct rs_module_event: load_module, unload_module."""

    hdr: Header
    task: TaskContext
    file: FileObj
    retval: int
    syscall_nr: int
    flags: int
    mod_flags: int
    name: str
    args: bytes


@dataclass(frozen=True, slots=True)
class BpfRecord:
    """struct rs_bpf_event."""

    hdr: Header
    task: TaskContext
    retval: int
    cmd: int
    bpf_flags: int
    prog_type: int
    prog_attach_type: int
    prog_id: int
    insn_cnt: int
    map_type: int
    map_id: int
    prog_name: str
    map_name: str
    prog_tag: bytes
    helpers: tuple[int, ...]    # the helper ids the program calls, ascending


@dataclass(frozen=True, slots=True)
class MemRecord:
    """struct rs_mem_event: mmap, mprotect."""

    hdr: Header
    task: TaskContext
    file: FileObj
    retval: int
    addr: int
    length: int
    vm_flags: int
    syscall_nr: int
    prot: int
    flags: int
    fd: int
    mem_flags: int
    pkey: int


@dataclass(frozen=True, slots=True)
class IoUringRecord:
    """struct rs_io_uring_event."""

    hdr: Header
    task: TaskContext
    base: FileObj
    retval: int
    user_data: int
    action: int
    op: int
    flags: int
    entries: int
    dfd: int
    req_path: bytes
    root: bytes


Record = FileRecord | ExecRecord | ForkRecord | ExitRecord | ModuleRecord | BpfRecord | MemRecord | IoUringRecord
RecordDecoder = Callable[[Any, int, Header], Record]


def split_nul(raw: bytes) -> tuple[str, ...]:
    """NUL-separated strings (argv/envp area) -> strings; a truncated last one stays."""
    if not raw:
        return ()
    parts = raw.split(b"\0")
    if parts[-1] == b"":
        parts.pop()
    return tuple(p.decode("utf-8", "backslashreplace") for p in parts)


class Decoder:
    """bytes -> Record, for every event type of the table."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.ffi = ffi = layout.ffi
        self.errors: Counter[str] = Counter()
        self.decoded = 0
        self._hdr_size = layout.sizeof("struct rs_event_header")
        self._hdr_type = ffi.typeof("struct rs_event_header *")
        c = layout.const
        self._task_kthread = c("RS_TASK_KTHREAD")
        self._args_truncated = c("RS_ARGS_TRUNCATED")
        self._envs_captured = c("RS_ENVS_CAPTURED")
        self.type_names: dict[int, str] = {}
        self._decoders: dict[int, tuple[Any, RecordDecoder]] = {}
        by_struct: dict[str, RecordDecoder] = {
            "rs_file_event": self._file_event,
            "rs_exec_event": self._exec_event,
            "rs_fork_event": self._fork_event,
            "rs_exit_event": self._exit_event,
            "rs_module_event": self._module_event,
            "rs_bpf_event": self._bpf_event,
            "rs_mem_event": self._mem_event,
            "rs_io_uring_event": self._io_uring_event,
        }
        for t in PRODUCED:
            assert t.id is not None and t.record is not None
            self.type_names[t.id] = t.name
            self._decoders[t.id] = (ffi.typeof(f"struct {t.record} *"), by_struct[t.record])
        self._min_size = {tid: layout.sizeof(f"struct {PRODUCED_RECORD[tid]}") for tid in self._decoders}

    @property
    def type_ids(self) -> dict[str, int]:
        return {name: type_id for type_id, name in self.type_names.items()}

    # -- entry point -----------------------------------------------------
    def decode(self, data: Any, size: int) -> Record | None:
        """Decode one record (``data``: a cdata pointer, valid during the call)."""
        if size < self._hdr_size:
            self.errors["short record"] += 1
            return None
        ffi = self.ffi
        h = ffi.cast(self._hdr_type, data)
        type_id = h.type
        entry = self._decoders.get(type_id)
        if entry is None:
            self.errors[f"unknown type {type_id}"] += 1
            return None
        if h.size > size:
            self.errors["size beyond record"] += 1
            return None
        name = self.type_names[type_id]
        if size < self._min_size[type_id]:
            self.errors[f"{name}: short record"] += 1
            return None
        ctype, fn = entry
        hdr = Header(name, h.size, h.timestamp, h.pid, h.tid, h.cpu, h.flags)
        try:
            rec = fn(ffi.cast(ctype, data), size, hdr)
        except (DecodeError, ValueError, KeyError, IndexError, OverflowError) as exc:
            self.errors[f"{name}: {type(exc).__name__}"] += 1
            log.debug("cannot decode a %s record: %s", name, exc)
            return None
        self.decoded += 1
        return rec

    # -- pieces ------------------------------------------------------------
    def _bytes(self, e: Any, size: int, s: Any) -> bytes:
        off, length = s.off, s.len
        if off == 0:
            return b""
        if off + length > size:
            raise DecodeError(f"string at {off}+{length} beyond record of {size} bytes")
        return bytes(self.ffi.buffer(self.ffi.cast("char *", e) + off, length))

    def _task(self, ctx: Any) -> TaskContext:
        return TaskContext(ctx.ppid, ctx.uid, ctx.gid, ctx.euid, ctx.egid, ctx.fsuid, ctx.fsgid,
                           ctx.cap_effective, ctx.cap_permitted, ctx.cgroup_id, ctx.start_time,
                           self.ffi.string(ctx.comm).decode("utf-8", "backslashreplace"))

    def _file(self, e: Any, size: int, f: Any) -> FileObj:
        if not f.flags and not f.path.off and not f.inode:
            return NO_FILE
        return FileObj(f.inode, f.ctime_ns, f.mtime_ns, f.mount_id, f.dev, f.mode, f.uid, f.gid, f.nlink,
                       f.flags, self._bytes(e, size, f.path),
                       self.ffi.string(f.fstype).decode("utf-8", "replace"))

    def _meta(self, m: Any) -> TaskMeta:
        ffi = self.ffi
        return TaskMeta(
            tty_name=ffi.string(m.tty_name).decode("utf-8", "replace"),
            container_id=ffi.string(m.container_id).decode("ascii", "replace"),
            is_kworker=bool(m.task_flags & self._task_kthread),
        )

    # -- one function per record struct -------------------------------------
    def _file_event(self, e: Any, size: int, hdr: Header) -> FileRecord:
        b = self._bytes
        return FileRecord(
            hdr, self._task(e.proc), self._file(e, size, e.file), self._file(e, size, e.base),
            self._file(e, size, e.dest), self._file(e, size, e.base2),
            e.retval, e.syscall_nr, e.flags, e.mode, e.dirfd, e.dirfd2, e.uid, e.gid, e.fim_flags,
            b(e, size, e.req_path), b(e, size, e.req_path2), b(e, size, e.xattr_name), b(e, size, e.fs_type),
            b(e, size, e.root), tuple(i for i in e.parent_inodes if i))

    def _exec_event(self, e: Any, size: int, hdr: Header) -> ExecRecord:
        flags = e.args_flags
        envp = split_nul(self._bytes(e, size, e.envp)) if flags & self._envs_captured else None
        return ExecRecord(
            hdr, self._task(e.proc), self._file(e, size, e.file), self._file(e, size, e.interpreter),
            self._meta(e.meta), e.old_tid, e.argc, e.envc, flags, self._bytes(e, size, e.filename),
            split_nul(self._bytes(e, size, e.argv)), envp)

    def _fork_event(self, e: Any, size: int, hdr: Header) -> ForkRecord:
        return ForkRecord(hdr, self._task(e.proc), self._meta(e.child), e.child_pid, e.child_tid,
                          e.parent_pid, e.parent_tid, e.child_start_time, e.parent_start_time)

    def _exit_event(self, e: Any, size: int, hdr: Header) -> ExitRecord:
        return ExitRecord(hdr, self._task(e.proc), e.exit_code)

    def _cstr(self, chars: Any) -> str:
        return self.ffi.string(chars).decode("utf-8", "backslashreplace")

    def _module_event(self, e: Any, size: int, hdr: Header) -> ModuleRecord:
        return ModuleRecord(hdr, self._task(e.proc), self._file(e, size, e.file), e.retval, e.syscall_nr, e.flags,
                            e.mod_flags, self._cstr(e.name), self._bytes(e, size, e.args))

    def _bpf_event(self, e: Any, size: int, hdr: Header) -> BpfRecord:
        helpers = tuple(word * 64 + bit for word, bits in enumerate(e.helpers) for bit in range(64)
                        if bits >> bit & 1)
        return BpfRecord(hdr, self._task(e.proc), e.retval, e.cmd, e.bpf_flags, e.prog_type, e.prog_attach_type,
                         e.prog_id, e.insn_cnt, e.map_type, e.map_id, self._cstr(e.prog_name),
                         self._cstr(e.map_name), bytes(self.ffi.buffer(e.prog_tag)), helpers)

    def _mem_event(self, e: Any, size: int, hdr: Header) -> MemRecord:
        return MemRecord(hdr, self._task(e.proc), self._file(e, size, e.file), e.retval, e.addr, e.len,
                         e.vm_flags, e.syscall_nr, e.prot, e.flags, e.fd, e.mem_flags, e.pkey)

    def _io_uring_event(self, e: Any, size: int, hdr: Header) -> IoUringRecord:
        b = self._bytes
        return IoUringRecord(hdr, self._task(e.proc), self._file(e, size, e.base), e.retval, e.user_data,
                             e.action, e.op, e.flags, e.entries, e.dfd, b(e, size, e.req_path), b(e, size, e.root))


PRODUCED_RECORD: dict[int, str] = {t.id: t.record for t in PRODUCED if t.id is not None and t.record is not None}

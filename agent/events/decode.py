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


# -- network (ebpf/hooks/net.h, dns.h) ---------------------------------------------

@dataclass(frozen=True, slots=True)
class Endpoint:
    """struct rs_ip_endpoint."""

    addr: bytes                 # 16 bytes, network order; IPv4 in the first 4
    port: int
    family: int                 # AF_INET, AF_INET6; 0: none


@dataclass(frozen=True, slots=True)
class NetRecord:
    """struct rs_net_event: connect, bind, accept."""

    hdr: Header
    task: TaskContext
    retval: int
    local: Endpoint
    remote: Endpoint
    syscall_nr: int
    fd: int
    protocol: int
    sock_type: int
    net_flags: int
    netns: int


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """struct rs_dns_event (hdr.pid 0: attributed to no process)."""

    hdr: Header
    task: TaskContext
    src: Endpoint
    dst: Endpoint
    ifindex: int
    netns: int
    pkt_len: int
    dns_len: int
    dns_flags: int
    l3_protocol: int
    l4_protocol: int
    direction: int
    id: int
    flags: int
    qdcount: int
    qtype: int
    qclass: int
    name: str                   # dotted, lower case (dns_name)


_DNS_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")


def dns_name(wire: bytes) -> str:
    """A wire-format name (length-prefixed labels, the kernel validated them)
    -> dotted text, lower case (names compare case-insensitively: a
    resolver's 0x20 randomization must not evade a rule), no final dot
    (``.`` for the root). Other bytes than letters, digits, ``-`` and ``_``
    are written ``\\DDD`` (decimal, as in zone files), so two different
    names never print the same. Raises DecodeError on a malformed name."""
    labels: list[str] = []
    pos = 0
    while True:
        if pos >= len(wire):
            raise DecodeError("DNS name without its root label")
        n = wire[pos]
        if n == 0:
            break
        if n > 63 or pos + 1 + n > len(wire):
            raise DecodeError(f"bad DNS label length {n} at {pos}")
        label = wire[pos + 1:pos + 1 + n].lower()
        labels.append("".join(chr(b) if b in _DNS_PLAIN else f"\\{b:03d}" for b in label))
        pos += 1 + n
    return ".".join(labels) if labels else "."


Record = FileRecord | ExecRecord | ForkRecord | ExitRecord | NetRecord | DnsRecord
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
            "rs_net_event": self._net_event,
            "rs_dns_event": self._dns_event,
        }
        for t in PRODUCED:
            assert t.id is not None and t.record is not None
            self.type_names[t.id] = t.name
            self._decoders[t.id] = (ffi.typeof(f"struct {t.record} *"), by_struct[t.record])
        self._min_size = {tid: _min_size(layout, PRODUCED_RECORD[tid]) for tid in self._decoders}
        self._dns_name_offset = layout.offsetof("struct rs_dns_event", "name")

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

    def _endpoint(self, ep: Any) -> Endpoint:
        return Endpoint(bytes(self.ffi.buffer(ep.addr)), ep.port, ep.family)

    def _net_event(self, e: Any, size: int, hdr: Header) -> NetRecord:
        return NetRecord(hdr, self._task(e.proc), e.retval, self._endpoint(e.local), self._endpoint(e.remote),
                         e.syscall_nr, e.fd, e.protocol, e.sock_type, e.net_flags, e.netns)

    def _dns_event(self, e: Any, size: int, hdr: Header) -> DnsRecord:
        n = e.name_len
        if self._dns_name_offset + n > size:
            raise DecodeError(f"DNS name of {n} bytes beyond a record of {size}")
        name = dns_name(bytes(self.ffi.buffer(e.name, n)))
        return DnsRecord(hdr, self._task(e.proc), self._endpoint(e.src), self._endpoint(e.dst), e.ifindex, e.netns,
                         e.pkt_len, e.dns_len, e.dns_flags, e.l3_protocol, e.l4_protocol, e.direction, e.id,
                         e.flags, e.qdcount, e.qtype, e.qclass, name)


PRODUCED_RECORD: dict[int, str] = {t.id: t.record for t in PRODUCED if t.id is not None and t.record is not None}

# Records the kernel cuts after a variable-length last member: their
# smallest size ends where that member starts.
VARIABLE_TAIL = {"rs_dns_event": "name"}


def _min_size(layout: Layout, struct: str) -> int:
    tail = VARIABLE_TAIL.get(struct)
    return layout.offsetof(f"struct {struct}", tail) if tail else layout.sizeof(f"struct {struct}")


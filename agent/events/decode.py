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
from typing import Any, NamedTuple

from codegen.eventtypes import PRODUCED

from ..process.model import Credentials, TaskMeta
from .codec import StructCodec
from .layout import Layout

log = logging.getLogger(__name__)


class DecodeError(ValueError):
    """A record that does not match its declared layout."""


# Records are named tuples: built in one call, immutable, hashable (a file
# object keys the cache of executable documents).

class Header(NamedTuple):
    """struct rs_event_header, with the type's name."""

    type: str
    size: int
    timestamp: int          # CLOCK_BOOTTIME ns
    pid: int
    tid: int
    cpu: int
    flags: int


class TaskContext(NamedTuple):
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


class FileObj(NamedTuple):
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


class FileRecord(NamedTuple):
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


class ExecRecord(NamedTuple):
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


class ForkRecord(NamedTuple):
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


class ExitRecord(NamedTuple):
    """struct rs_exit_event."""

    hdr: Header
    task: TaskContext
    exit_code: int              # wait status


class Target(NamedTuple):
    """struct rs_target: a task a call acts on, named by the kernel."""

    pid: int                    # thread-group id (host pid namespace)
    tid: int
    start_time: int             # CLOCK_BOOTTIME ns of its group leader
    task: TaskContext           # its credentials, comm, parent and cgroup then


class ActivityRecord(NamedTuple):
    """struct rs_activity_event: ptrace, signal, credentials, memfd_create,
    splice, prctl, chdir, unshare, setns (events.h says what each sets)."""

    hdr: Header
    task: TaskContext           # the caller, after the call
    target: Target | None       # None: the kernel named no task
    file: FileObj
    base: FileObj
    retval: int
    args: tuple[int, ...]       # the six argument registers
    clone_flags: int            # clone3: clone_args.flags
    syscall_nr: int
    flags: int                  # enum rs_activity_flags
    pidns_level: int
    pipe_entry_flags: int
    pipe_exit_flags: int
    ns_type: int
    ns_inum: int
    str: bytes
    ns_name: bytes
    root: bytes


# -- engineer B (issue 9): modules, bpf, memory, io_uring --------------------

class ModuleRecord(NamedTuple):
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


class BpfRecord(NamedTuple):
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


class MemRecord(NamedTuple):
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


class IoUringRecord(NamedTuple):
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


# -- network (ebpf/hooks/net.h, dns.h) ---------------------------------------------

class Endpoint(NamedTuple):
    """struct rs_ip_endpoint."""

    addr: bytes                 # 16 bytes, network order; IPv4 in the first 4
    port: int
    family: int                 # AF_INET, AF_INET6; 0: none


class NetRecord(NamedTuple):
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


class DnsAnswer(NamedTuple):
    """struct rs_dns_answer: an A or AAAA answer of a response."""

    family: int
    addr: bytes
    ttl: int


class DnsRecord(NamedTuple):
    """struct rs_dns_event (hdr.pid 0: attributed to no process): a query
    (direction egress) or a response (ingress, with its answers)."""

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
    ancount: int
    rcode: int
    name: str                   # dotted, lower case (dns_name)
    answers: tuple[DnsAnswer, ...] = ()


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


Record = (FileRecord | ExecRecord | ForkRecord | ExitRecord | ActivityRecord | ModuleRecord | BpfRecord | MemRecord
          | IoUringRecord | NetRecord | DnsRecord)

# Records the kernel cuts after a variable-length last member: their
# smallest size ends where that member starts (the codec reads up to it).
VARIABLE_TAIL = {"rs_dns_event": "name"}


def split_nul(raw: bytes) -> tuple[str, ...]:
    """NUL-separated strings (argv/envp area) -> strings; a truncated last one stays."""
    if not raw:
        return ()
    parts = raw.split(b"\0")
    if parts[-1] == b"":
        parts.pop()
    return tuple(p.decode("utf-8", "backslashreplace") for p in parts)


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


_TASK_FIELDS = ("ppid", "uid", "gid", "euid", "egid", "fsuid", "fsgid", "cap_effective", "cap_permitted",
                "cgroup_id", "start_time", "comm")
_FILE_INTS = ("inode", "ctime_ns", "mtime_ns", "mount_id", "dev", "mode", "uid", "gid", "nlink", "flags")
_FILE_FIELDS = (*_FILE_INTS, "path.off", "path.len", "fstype")
_META_FIELDS = ("tty_name", "container_id", "task_flags", "loginuid", "cgroup_id")

Unpacked = tuple[Any, ...]
_new = tuple.__new__     # a named tuple from a tuple, without _make's length check


class Decoder:
    """bytes -> Record, for every event type of the table.

    Each record struct is read by one ``struct.unpack_from`` (agent/events/
    codec.py, derived from cffi's parse of events.h); the decoders below pick
    their fields out of that tuple by index and slice strings from the bytes.
    """

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.ffi = layout.ffi
        self.errors: Counter[str] = Counter()
        self.decoded = 0
        hdr = StructCodec(self.ffi, "struct rs_event_header")
        self._hdr_size = hdr.size
        self._hdr_unpack = hdr.unpack_from
        c = layout.const
        self._task_kthread = c("RS_TASK_KTHREAD")
        self._envs_captured = c("RS_ENVS_CAPTURED")
        self._act_target = c("RS_ACT_TARGET")
        self.type_names: dict[int, str] = {}
        self._fs_names: dict[bytes, str] = {}   # struct rs_file.fstype bytes -> its name
        self._decoders: dict[int, tuple[int, Callable[[Unpacked, bytes, Header], Record], Any]] = {}
        builders = {
            "rs_file_event": self._file_event,
            "rs_exec_event": self._exec_event,
            "rs_fork_event": self._fork_event,
            "rs_exit_event": self._exit_event,
            "rs_activity_event": self._activity_event,
            "rs_module_event": self._module_event,
            "rs_bpf_event": self._bpf_event,
            "rs_mem_event": self._mem_event,
            "rs_io_uring_event": self._io_uring_event,
            "rs_net_event": self._net_event,
            "rs_dns_event": self._dns_event,
        }
        built: dict[str, tuple[int, Callable[[Unpacked, bytes, Header], Record], Any]] = {}
        for t in PRODUCED:
            assert t.id is not None and t.record is not None
            self.type_names[t.id] = t.name
            if t.record not in built:
                codec = StructCodec(self.ffi, f"struct {t.record}", tail=VARIABLE_TAIL.get(t.record))
                built[t.record] = (codec.size, builders[t.record](codec), codec.unpack_from)
            self._decoders[t.id] = built[t.record]

    @property
    def type_ids(self) -> dict[str, int]:
        return {name: type_id for type_id, name in self.type_names.items()}

    # -- entry point -----------------------------------------------------
    def decode(self, data: Any, size: int) -> Record | None:
        """Decode one record (``data``: a cdata pointer, valid during the call)."""
        if size < self._hdr_size:
            self.errors["short record"] += 1
            return None
        buf = bytes(self.ffi.buffer(data, size))
        type_id, rec_size, ts, pid, tid, cpu, flags = self._hdr_unpack(buf)
        entry = self._decoders.get(type_id)
        if entry is None:
            self.errors[f"unknown type {type_id}"] += 1
            return None
        if rec_size > size:
            self.errors["size beyond record"] += 1
            return None
        name = self.type_names[type_id]
        min_size, build, unpack = entry
        if size < min_size:
            self.errors[f"{name}: short record"] += 1
            return None
        hdr = Header(name, rec_size, ts, pid, tid, cpu, flags)
        try:
            rec = build(unpack(buf), buf, hdr)
        except (DecodeError, ValueError, KeyError, IndexError, OverflowError) as exc:
            self.errors[f"{name}: {type(exc).__name__}"] += 1
            log.debug("cannot decode a %s record: %s", name, exc)
            return None
        self.decoded += 1
        return rec

    # -- pieces ------------------------------------------------------------
    @staticmethod
    def _str(buf: bytes, off: int, length: int) -> bytes:
        if off == 0:
            return b""
        if off + length > len(buf):
            raise DecodeError(f"string at {off}+{length} beyond record of {len(buf)} bytes")
        return buf[off:off + length]

    @staticmethod
    def _task_reader(codec: StructCodec, prefix: str) -> Callable[[Unpacked], TaskContext]:
        get = codec.getter(*(f"{prefix}{n}" for n in _TASK_FIELDS))

        def task(vals: Unpacked) -> TaskContext:
            t = get(vals)
            return _new(TaskContext, (*t[:11], _cstr(t[11])))
        return task

    def _file_reader(self, codec: StructCodec, prefix: str) -> Callable[[Unpacked, bytes], FileObj]:
        get = codec.getter(*(f"{prefix}{n}" for n in _FILE_FIELDS))
        text = self._str

        i_flags, i_path, i_inode = (codec.index[f"{prefix}{n}"] for n in ("flags", "path.off", "inode"))
        fs_names = self._fs_names

        def file(vals: Unpacked, buf: bytes) -> FileObj:
            if not vals[i_flags] and not vals[i_path] and not vals[i_inode]:
                return NO_FILE
            t = get(vals)
            fs_raw = t[12]
            fstype = fs_names.get(fs_raw)
            if fstype is None:
                fstype = fs_raw.split(b"\0", 1)[0].decode("utf-8", "replace")
                if len(fs_names) < 256:   # a host has a few filesystem types
                    fs_names[fs_raw] = fstype
            return _new(FileObj, (*t[:10], text(buf, t[10], t[11]), fstype))
        return file

    def _meta_reader(self, codec: StructCodec, prefix: str) -> Callable[[Unpacked], TaskMeta]:
        get = codec.getter(*(f"{prefix}{n}" for n in _META_FIELDS))
        kthread = self._task_kthread

        def meta(vals: Unpacked) -> TaskMeta:
            tty, container, flags, loginuid, cgroup_id = get(vals)
            return TaskMeta(tty_name=tty.split(b"\0", 1)[0].decode("utf-8", "replace"),
                            container_id=container.split(b"\0", 1)[0].decode("ascii", "replace"),
                            is_kworker=bool(flags & kthread), auid=loginuid, cgroup_id=cgroup_id)
        return meta

    def _strings(self, codec: StructCodec, *names: str) -> Callable[[Unpacked, bytes], list[bytes]]:
        get = codec.getter(*(f"{n}.{part}" for n in names for part in ("off", "len")))
        text = self._str

        def strings(vals: Unpacked, buf: bytes) -> list[bytes]:
            t = iter(get(vals))
            return [text(buf, off, length) if off else b"" for off, length in zip(t, t)]
        return strings

    # -- one builder per record struct: (unpacked, bytes, header) -> record --
    def _file_event(self, codec: StructCodec) -> Callable[[Unpacked, bytes, Header], Record]:
        task = self._task_reader(codec, "proc.")
        file, base, dest, base2 = (self._file_reader(codec, f"{n}.") for n in ("file", "base", "dest", "base2"))
        scalars = codec.getter("retval", "syscall_nr", "flags", "mode", "dirfd", "dirfd2", "uid", "gid", "fim_flags")
        strings = self._strings(codec, "req_path", "req_path2", "xattr_name", "fs_type", "root")
        parents = codec.getter(*codec.prefixed("parent_inodes["))

        def build(vals: Unpacked, buf: bytes, hdr: Header) -> Record:
            return _new(FileRecord, (hdr, task(vals), file(vals, buf), base(vals, buf), dest(vals, buf),
                                     base2(vals, buf), *scalars(vals), *strings(vals, buf),
                                     tuple(filter(None, parents(vals)))))
        return build

    def _exec_event(self, codec: StructCodec) -> Callable[[Unpacked, bytes, Header], Record]:
        task = self._task_reader(codec, "proc.")
        file = self._file_reader(codec, "file.")
        interpreter = self._file_reader(codec, "interpreter.")
        meta = self._meta_reader(codec, "meta.")
        scalars = codec.getter("old_tid", "argc", "envc", "args_flags")
        strings = self._strings(codec, "filename", "argv", "envp")
        envs_captured = self._envs_captured

        def build(vals: Unpacked, buf: bytes, hdr: Header) -> Record:
            old_tid, argc, envc, flags = scalars(vals)
            filename, argv, envp = strings(vals, buf)
            return ExecRecord(hdr, task(vals), file(vals, buf), interpreter(vals, buf), meta(vals),
                              old_tid, argc, envc, flags, filename, split_nul(argv),
                              split_nul(envp) if flags & envs_captured else None)
        return build

    def _fork_event(self, codec: StructCodec) -> Callable[[Unpacked, bytes, Header], Record]:
        task = self._task_reader(codec, "proc.")
        child = self._meta_reader(codec, "child.")
        scalars = codec.getter("child_pid", "child_tid", "parent_pid", "parent_tid",
                               "child_start_time", "parent_start_time")

        def build(vals: Unpacked, buf: bytes, hdr: Header) -> Record:
            return ForkRecord(hdr, task(vals), child(vals), *scalars(vals))
        return build

    def _exit_event(self, codec: StructCodec) -> Callable[[Unpacked, bytes, Header], Record]:
        task = self._task_reader(codec, "proc.")
        code = codec.index["exit_code"]

        def build(vals: Unpacked, buf: bytes, hdr: Header) -> Record:
            return ExitRecord(hdr, task(vals), vals[code])
        return build

    def _activity_event(self, codec: StructCodec) -> Callable[[Unpacked, bytes, Header], Record]:
        task = self._task_reader(codec, "proc.")
        target_task = self._task_reader(codec, "target.ctx.")
        target_ids = codec.getter("target.pid", "target.tid", "target.start_time")
        file, base = self._file_reader(codec, "file."), self._file_reader(codec, "base.")
        retval = codec.index["retval"]
        args = codec.getter(*codec.prefixed("args["))
        scalars = codec.getter("clone_flags", "syscall_nr", "flags", "pidns_level", "pipe_entry_flags",
                               "pipe_exit_flags", "ns_type", "ns_inum")
        i_flags = codec.index["flags"]
        strings = self._strings(codec, "str", "ns_name", "root")
        has_target = self._act_target

        def build(vals: Unpacked, buf: bytes, hdr: Header) -> Record:
            target = (_new(Target, (*target_ids(vals), target_task(vals)))
                      if vals[i_flags] & has_target else None)
            return _new(ActivityRecord, (hdr, task(vals), target, file(vals, buf), base(vals, buf),
                                         vals[retval], args(vals), *scalars(vals), *strings(vals, buf)))
        return build

    def _module_event(self, codec: StructCodec) -> Callable[[Unpacked, bytes, Header], Record]:
        task = self._task_reader(codec, "proc.")
        file = self._file_reader(codec, "file.")
        scalars = codec.getter("retval", "syscall_nr", "flags", "mod_flags")
        name = codec.index["name"]
        strings = self._strings(codec, "args")

        def build(vals: Unpacked, buf: bytes, hdr: Header) -> Record:
            return _new(ModuleRecord, (hdr, task(vals), file(vals, buf), *scalars(vals), _cstr(vals[name]),
                                       *strings(vals, buf)))
        return build

    def _bpf_event(self, codec: StructCodec) -> Callable[[Unpacked, bytes, Header], Record]:
        task = self._task_reader(codec, "proc.")
        scalars = codec.getter("retval", "cmd", "bpf_flags", "prog_type", "prog_attach_type", "prog_id",
                               "insn_cnt", "map_type", "map_id")
        names = codec.getter("prog_name", "map_name")
        tag = codec.index["prog_tag"]          # a byte array: one bytes leaf
        words = codec.getter(*codec.prefixed("helpers["))

        def build(vals: Unpacked, buf: bytes, hdr: Header) -> Record:
            helpers = tuple(word * 64 + bit for word, bits in enumerate(words(vals)) if bits
                            for bit in range(64) if bits >> bit & 1)
            prog_name, map_name = names(vals)
            return _new(BpfRecord, (hdr, task(vals), *scalars(vals), _cstr(prog_name), _cstr(map_name),
                                    vals[tag], helpers))
        return build

    def _mem_event(self, codec: StructCodec) -> Callable[[Unpacked, bytes, Header], Record]:
        task = self._task_reader(codec, "proc.")
        file = self._file_reader(codec, "file.")
        scalars = codec.getter("retval", "addr", "len", "vm_flags", "syscall_nr", "prot", "flags", "fd",
                               "mem_flags", "pkey")

        def build(vals: Unpacked, buf: bytes, hdr: Header) -> Record:
            return _new(MemRecord, (hdr, task(vals), file(vals, buf), *scalars(vals)))
        return build

    def _io_uring_event(self, codec: StructCodec) -> Callable[[Unpacked, bytes, Header], Record]:
        task = self._task_reader(codec, "proc.")
        base = self._file_reader(codec, "base.")
        scalars = codec.getter("retval", "user_data", "action", "op", "flags", "entries", "dfd")
        strings = self._strings(codec, "req_path", "root")

        def build(vals: Unpacked, buf: bytes, hdr: Header) -> Record:
            return _new(IoUringRecord, (hdr, task(vals), base(vals, buf), *scalars(vals), *strings(vals, buf)))
        return build

    def _endpoint_reader(self, codec: StructCodec, prefix: str) -> Callable[[Unpacked], Endpoint]:
        get = codec.getter(*(f"{prefix}{n}" for n in ("addr", "port", "family")))

        def endpoint(vals: Unpacked) -> Endpoint:
            return _new(Endpoint, get(vals))
        return endpoint

    def _net_event(self, codec: StructCodec) -> Callable[[Unpacked, bytes, Header], Record]:
        task = self._task_reader(codec, "proc.")
        local, remote = self._endpoint_reader(codec, "local."), self._endpoint_reader(codec, "remote.")
        retval = codec.index["retval"]
        scalars = codec.getter("syscall_nr", "fd", "protocol", "sock_type", "net_flags", "netns")

        def build(vals: Unpacked, buf: bytes, hdr: Header) -> Record:
            return _new(NetRecord, (hdr, task(vals), vals[retval], local(vals), remote(vals), *scalars(vals)))
        return build

    def _dns_event(self, codec: StructCodec) -> Callable[[Unpacked, bytes, Header], Record]:
        task = self._task_reader(codec, "proc.")
        src, dst = self._endpoint_reader(codec, "src."), self._endpoint_reader(codec, "dst.")
        scalars = codec.getter("ifindex", "netns", "pkt_len", "dns_len", "dns_flags", "l3_protocol", "l4_protocol",
                               "direction", "id", "flags", "qdcount", "qtype", "qclass", "ancount", "rcode")
        answer_count = codec.index["answer_count"]
        answers = [codec.getter(*(f"answers[{i}].{n}" for n in ("family", "addr", "ttl")))
                   for i in range(self.layout.const("RS_DNS_ANSWERS_MAX"))]
        name_len = codec.index["name_len"]
        name_at = codec.size            # the variable tail: the record ends after the name

        def build(vals: Unpacked, buf: bytes, hdr: Header) -> Record:
            n = vals[name_len]
            if name_at + n > len(buf):
                raise DecodeError(f"DNS name of {n} bytes beyond a record of {len(buf)}")
            count = vals[answer_count]
            if count > len(answers):
                raise DecodeError(f"DNS response with {count} answers, at most {len(answers)} fit")
            return _new(DnsRecord, (hdr, task(vals), src(vals), dst(vals), *scalars(vals),
                                    dns_name(buf[name_at:name_at + n]),
                                    tuple(_new(DnsAnswer, get(vals)) for get in answers[:count])))
        return build

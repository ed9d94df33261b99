"""Ring-buffer records -> event documents.

Records dispatch on the common header's ``type`` through a registry of
handlers (one per record struct). A record that is too short, of an unknown
type, or that a handler cannot decode is counted under a reason in
``Decoder.errors`` and skipped: a decode error never stops the read loop.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codegen.eventtypes import PRODUCED

from ..clock import BootClock
from ..mounts import MountTable
from ..process.cache import ProcessCache
from ..process.model import Process
from ..users import UserNames
from .documents import file_doc
from .layout import Layout
from .process_docs import TaskContext, process_doc

log = logging.getLogger(__name__)

Document = dict[str, Any]
Handler = Callable[[Any, int], "Document | None"]


@dataclass
class DecodeEnv:
    """What decoding needs besides the record."""

    clock: BootClock
    processes: ProcessCache
    users: UserNames
    mounts: MountTable


def record_decoders(dec: Decoder) -> dict[str, Handler]:
    """The decoder of each record struct (events.h); the table says which
    struct each event type sends."""
    from .file_events import FileEventDecoder
    from .process_events import FileDocs, decode_exec, decode_exit, decode_fork

    files = FileDocs()
    return {
        "rs_file_event": FileEventDecoder(dec).decode,
        "rs_exec_event": lambda d, s: decode_exec(dec, d, s, files),
        "rs_fork_event": lambda d, s: decode_fork(dec, d, s),
        "rs_exit_event": lambda d, s: decode_exit(dec, d, s),
    }


class DecodeError(ValueError):
    """A record that does not match its declared layout."""


class Decoder:
    def __init__(self, layout: Layout, env: DecodeEnv) -> None:
        self.layout = layout
        self.env = env
        self.ffi = layout.ffi
        self.errors: Counter[str] = Counter()
        self.decoded = 0
        self._hdr_size = layout.sizeof("struct rs_event_header")
        self.type_names: dict[int, str] = {}
        self._handlers: dict[int, Handler] = {}
        handlers = record_decoders(self)
        for t in PRODUCED:
            assert t.id is not None and t.record is not None
            self.register(t.id, t.name, handlers[t.record])

    @property
    def type_ids(self) -> dict[str, int]:
        return {name: type_id for type_id, name in self.type_names.items()}

    def register(self, type_id: int, name: str, handler: Handler) -> None:
        self.type_names[type_id] = name
        self._handlers[type_id] = handler

    # -- entry point -----------------------------------------------------
    def decode(self, data: Any, size: int) -> Document | None:
        """Decode one record (``data``: a cdata pointer valid during the call)."""
        if size < self._hdr_size:
            self.errors["short record"] += 1
            return None
        hdr = self.ffi.cast("struct rs_event_header *", data)
        handler = self._handlers.get(hdr.type)
        if handler is None:
            self.errors[f"unknown type {hdr.type}"] += 1
            return None
        if hdr.size > size:
            self.errors["size beyond record"] += 1
            return None
        try:
            doc = handler(data, size)
        except (DecodeError, ValueError, KeyError, IndexError, OverflowError) as exc:
            name = self.type_names.get(hdr.type, str(hdr.type))
            self.errors[f"{name}: {type(exc).__name__}"] += 1
            log.debug("cannot decode a %s record: %s", name, exc)
            return None
        self.decoded += 1
        return doc

    # -- helpers for handlers ---------------------------------------------------
    def bytes_at(self, base: Any, size: int, s: Any) -> bytes:
        off, length = int(s.off), int(s.len)
        if off == 0:
            return b""
        if off + length > size:
            raise DecodeError(f"string at {off}+{length} beyond record of {size} bytes")
        return bytes(self.ffi.buffer(self.ffi.cast("char *", base) + off, length))

    def task(self, ctx: Any) -> TaskContext:
        return TaskContext(
            ppid=ctx.ppid,
            uid=ctx.uid,
            gid=ctx.gid,
            euid=ctx.euid,
            egid=ctx.egid,
            fsuid=ctx.fsuid,
            fsgid=ctx.fsgid,
            cap_effective=ctx.cap_effective,
            cap_permitted=ctx.cap_permitted,
            cgroup_id=ctx.cgroup_id,
            start_boot_ns=ctx.start_time,
            comm=self.ffi.string(ctx.comm).decode("utf-8", "backslashreplace"),
        )

    def file(self, base: Any, size: int, f: Any, path: bytes | None = None) -> Document:
        if path is None:
            path = self.bytes_at(base, size, f.path)
        return file_doc(
            path,
            inode=f.inode,
            mount_id=f.mount_id,
            mode=f.mode,
            uid=f.uid,
            gid=f.gid,
            fs_type=self.ffi.string(f.fstype).decode("utf-8", "replace"),
            flags=f.flags,
            ctime_ns=f.ctime_ns,
            mtime_ns=f.mtime_ns,
            users=self.env.users,
        )

    def envelope(self, name: str, hdr: Any, task: TaskContext, pid: int | None = None,
                 image: Process | None = None) -> Document:
        """``type``, ``timestamp`` and ``process`` of an event. The image is
        the cache's for (pid, task start time) unless given."""
        pid = hdr.pid if pid is None else pid
        env = self.env
        if image is None:
            image = env.processes.for_event(pid, task.start_boot_ns, ppid=task.ppid,
                                            comm=task.comm, creds=lambda: task.creds)
        return {
            "type": name,
            "timestamp": env.clock.to_epoch(hdr.timestamp),
            "process": process_doc(image, pid=pid, tid=hdr.tid, task=task, users=env.users),
        }

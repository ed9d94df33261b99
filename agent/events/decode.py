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

from ..clock import BootClock
from ..mounts import MountTable
from ..paths import join_lexically
from ..process.cache import ProcessCache
from ..users import UserNames
from .documents import TaskContext, file_doc, process_doc
from .layout import Layout

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
        c = layout.const
        for name in FILE_EVENT_TYPES:
            self.register(c(f"RS_EVENT_{name.upper()}"), name, self._file_event)
        self.register(c("RS_EVENT_EXEC"), "exec", self._exec)
        self.register(c("RS_EVENT_FORK"), "fork", self._fork)
        self.register(c("RS_EVENT_EXIT"), "exit", self._exit)

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

    # -- helpers -------------------------------------------------------------
    def _bytes(self, base: Any, size: int, s: Any) -> bytes:
        off, length = int(s.off), int(s.len)
        if off == 0:
            return b""
        if off + length > size:
            raise DecodeError(f"string at {off}+{length} beyond record of {size} bytes")
        return bytes(self.ffi.buffer(self.ffi.cast("char *", base) + off, length))

    def _task(self, ctx: Any) -> TaskContext:
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

    def _file(self, base: Any, size: int, f: Any, path: bytes | None = None) -> Document:
        if path is None:
            path = self._bytes(base, size, f.path)
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

    def _envelope(self, name: str, hdr: Any, task: TaskContext, pid: int | None = None) -> Document:
        pid = hdr.pid if pid is None else pid
        env = self.env
        return {
            "type": name,
            "timestamp": env.clock.to_epoch(hdr.timestamp),
            "process": process_doc(
                env.processes.get(pid), pid=pid, tid=hdr.tid, task=task, users=env.users
            ),
        }

    # -- handlers ------------------------------------------------------------
    def _file_event(self, data: Any, size: int) -> Document:
        e = self.ffi.cast("struct rs_file_event *", data)
        name = self.type_names[e.hdr.type]
        doc = self._envelope(name, e.hdr, self._task(e.proc))
        if e.file.flags & self.layout.const("RS_FILE_PRESENT"):
            file = self._file(data, size, e.file)
        else:
            # No kernel object (the call failed): the caller's string, joined
            # to the kernel-walked start directory and normalized lexically.
            req = self._bytes(data, size, e.req_path)
            start = self._bytes(data, size, e.base.path) or b"/"
            file = self._file(data, size, e.file, path=join_lexically(start, req))
            file["filesystem"] = self.ffi.string(e.base.fstype).decode("utf-8", "replace")
        body: Document = {"file": file, "retval": e.retval}
        if name == "open":
            body["flags"] = e.flags
            file["destination"] = {"mode": e.mode}
        doc[name] = body
        return doc

    def _exec(self, data: Any, size: int) -> Document:
        e = self.ffi.cast("struct rs_exec_event *", data)
        env = self.env
        task = self._task(e.proc)
        file = self._file(data, size, e.file)
        argv_raw = self._bytes(data, size, e.argv)
        argv = [a.decode("utf-8", "backslashreplace") for a in argv_raw.split(b"\0")]
        if argv and argv[-1] == "":
            argv.pop()
        truncated = bool(e.args_flags & self.layout.const("RS_ARGS_TRUNCATED"))
        interp_raw = self._bytes(data, size, e.interp)
        interp = None
        if interp_raw:
            interp = {}
            from .documents import path_fields

            path_fields(interp_raw, interp)
        env.processes.on_exec(
            e.hdr.pid,
            env.clock.to_epoch(e.hdr.timestamp),
            comm=task.comm,
            file=file,
            argv=argv,
            args_truncated=truncated,
            interpreter=interp,
        )
        doc = self._envelope("exec", e.hdr, task)
        exec_doc = {k: v for k, v in doc["process"].items() if k != "ancestors"}
        doc["exec"] = exec_doc
        return doc

    def _fork(self, data: Any, size: int) -> Document:
        e = self.ffi.cast("struct rs_fork_event *", data)
        env = self.env
        env.processes.on_fork(e.child_pid, e.parent_pid, env.clock.to_epoch(e.child_start_time))
        doc = self._envelope("fork", e.hdr, self._task(e.proc), pid=e.child_pid)
        doc["process"]["ppid"] = e.parent_pid
        doc["fork"] = {"parent_pid": e.parent_pid, "child_pid": e.child_pid}
        return doc

    def _exit(self, data: Any, size: int) -> Document:
        e = self.ffi.cast("struct rs_exit_event *", data)
        env = self.env
        status = int(e.exit_code)
        doc = self._envelope("exit", e.hdr, self._task(e.proc))
        env.processes.on_exit(e.hdr.pid, doc["timestamp"], status)
        doc["exit"] = exit_fields(status)
        return doc


FILE_EVENT_TYPES = (
    "open", "chmod", "chown", "mkdir", "rmdir", "unlink", "rename", "link",
    "utimes", "setxattr", "removexattr", "mount", "umount",
)


def exit_fields(status: int) -> Document:
    """``exit.code``/``exit.cause`` from a wait status, as the reference does:
    EXITED with the exit code, or SIGNALED/COREDUMPED with the signal number."""
    sig = status & 0x7F
    if sig == 0:
        return {"cause": "EXITED", "code": (status >> 8) & 0xFF}
    return {"cause": "COREDUMPED" if status & 0x80 else "SIGNALED", "code": sig}

"""Decoding process records: exec, fork, exit. Each also updates the
process cache, in ring-buffer order, before the document is built."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..mounts import MountTable
from ..paths import join_lexically
from ..process.cache import ExecInfo, FileDoc
from ..process.model import TaskMeta
from ..process.procfs import ProcEntry
from ..users import UserNames
from .documents import file_doc, path_fields
from .process_docs import body_doc

if TYPE_CHECKING:
    from .decode import Decoder, Document

log = logging.getLogger(__name__)


class FileDocs:
    """Executable file documents shared by every image of the same file
    (a host runs few distinct executables, many times): bounded, least
    recently used first out."""

    def __init__(self, size: int = 4096) -> None:
        self._docs: OrderedDict[tuple[Any, ...], Document] = OrderedDict()
        self._size = size

    def get(self, dec: Decoder, data: Any, size: int, f: Any) -> Document:
        path = dec.bytes_at(data, size, f.path)
        key = (path, int(f.inode), int(f.mount_id), int(f.ctime_ns), int(f.mtime_ns), int(f.mode),
               int(f.uid), int(f.gid), int(f.flags), bytes(dec.ffi.string(f.fstype)))
        doc = self._docs.get(key)
        if doc is None:
            doc = self._docs[key] = dec.file(data, size, f, path=path)
            if len(self._docs) > self._size:
                self._docs.popitem(last=False)
        else:
            self._docs.move_to_end(key)
        return doc


def split_nul(raw: bytes) -> tuple[str, ...]:
    """NUL-separated strings (argv/envp area) -> strings; a truncated last one stays."""
    if not raw:
        return ()
    parts = raw.split(b"\0")
    if parts[-1] == b"":
        parts.pop()
    return tuple(p.decode("utf-8", "backslashreplace") for p in parts)


def task_meta(dec: Decoder, m: Any) -> TaskMeta:
    ffi = dec.ffi
    return TaskMeta(
        tty_name=ffi.string(m.tty_name).decode("utf-8", "replace"),
        container_id=ffi.string(m.container_id).decode("ascii", "replace"),
        is_kworker=bool(m.task_flags & dec.layout.const("RS_TASK_KTHREAD")),
    )


def file_from_name(filename: bytes, pid: int) -> Document:
    """A script whose struct file the kernel side could not find: the path
    execve was given, made absolute against the process's cwd, and stat()ed
    now (a best effort, flagged ``resolved_from_name``)."""
    path = filename
    if not path.startswith(b"/"):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = "/"
        path = join_lexically(os.fsencode(cwd), path)
    doc = path_fields(path, {})
    doc["resolved_from_name"] = True
    try:
        st = os.stat(path)
    except OSError:
        return doc
    doc.update(inode=st.st_ino, mode=st.st_mode, uid=st.st_uid, gid=st.st_gid,
               change_time=st.st_ctime_ns, modification_time=st.st_mtime_ns)
    return doc


def decode_exec(dec: Decoder, data: Any, size: int, files: FileDocs | None = None) -> Document:
    e = dec.ffi.cast("struct rs_exec_event *", data)
    env = dec.env
    c = dec.layout.const
    task = dec.task(e.proc)
    flags = int(e.args_flags)
    files = files or FileDocs(1)
    interpreter = None
    if flags & c("RS_EXEC_SCRIPT"):
        interpreter = files.get(dec, data, size, e.interpreter)
    if flags & c("RS_EXEC_SCRIPT_FROM_NAME"):
        file = file_from_name(dec.bytes_at(data, size, e.filename), e.hdr.pid)
    else:
        file = files.get(dec, data, size, e.file)
    envp = None
    if flags & c("RS_ENVS_CAPTURED"):
        envp = split_nul(dec.bytes_at(data, size, e.envp))
    info = ExecInfo(
        comm=task.comm,
        file=file,
        argv=split_nul(dec.bytes_at(data, size, e.argv)),
        args_truncated=bool(flags & c("RS_ARGS_TRUNCATED")),
        creds=task.creds,
        meta=task_meta(dec, e.meta),
        interpreter=interpreter,
        envp=envp,
        envs_truncated=bool(flags & c("RS_ENVS_TRUNCATED")),
    )
    image = env.processes.on_exec(e.hdr.pid, task.start_boot_ns, env.clock.to_epoch(e.hdr.timestamp),
                                  info, kernel_ppid=task.ppid)
    doc = dec.envelope("exec", e.hdr, task, image=image)
    body = body_doc(doc["process"])
    body["old_tid"] = int(e.old_tid)  # != pid: execve from a non-leader thread
    doc["exec"] = body
    return doc


def decode_fork(dec: Decoder, data: Any, size: int) -> Document:
    e = dec.ffi.cast("struct rs_fork_event *", data)
    env = dec.env
    parent_task = dec.task(e.proc)
    child = env.processes.on_fork(
        e.child_pid, e.child_start_time, e.parent_pid, e.parent_start_time,
        creds=parent_task.creds, meta=task_meta(dec, e.child), parent_comm=parent_task.comm,
    )
    # The child runs with a copy of the parent's credentials and comm.
    child_task = dataclasses.replace(parent_task, ppid=e.parent_pid, start_boot_ns=e.child_start_time)
    doc = dec.envelope("fork", e.hdr, child_task, pid=e.child_pid, image=child)
    body = body_doc(doc["process"])
    body.update(parent_pid=int(e.parent_pid), child_pid=int(e.child_pid))
    doc["fork"] = body
    return doc


def decode_exit(dec: Decoder, data: Any, size: int) -> Document:
    e = dec.ffi.cast("struct rs_exit_event *", data)
    status = int(e.exit_code)
    task = dec.task(e.proc)
    doc = dec.envelope("exit", e.hdr, task)
    dec.env.processes.on_exit(e.hdr.pid, task.start_boot_ns, doc["timestamp"], status)
    body = body_doc(doc["process"])
    body.update(exit_fields(status))
    doc["exit"] = body
    return doc


def exit_fields(status: int) -> Document:
    """``exit.code``/``exit.cause`` from a wait status, as the reference does:
    EXITED with the exit code, or SIGNALED/COREDUMPED with the signal number."""
    sig = status & 0x7F
    if sig == 0:
        return {"cause": "EXITED", "code": (status >> 8) & 0xFF}
    return {"cause": "COREDUMPED" if status & 0x80 else "SIGNALED", "code": sig}


def procfs_file_doc(users: UserNames, mounts: MountTable) -> FileDoc:
    """The file document of a /proc image's executable, shaped like one from
    an exec record (filesystem from the mount table; in_upper_layer unknown)."""

    def build(entry: ProcEntry) -> Document | None:
        if entry.exe is None:
            return None
        st = entry.exe_stat
        if st is None:
            return path_fields(entry.exe, {})
        mount = mounts.get(st.mount_id) if st.mount_id else None
        return file_doc(
            entry.exe, inode=st.inode, mount_id=st.mount_id, mode=st.mode, uid=st.uid, gid=st.gid,
            fs_type=mount.fs_type if mount else "", flags=0, ctime_ns=st.ctime_ns,
            mtime_ns=st.mtime_ns, users=users,
        )

    return build

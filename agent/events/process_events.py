"""Resolving process records: exec, fork, exit. Each also updates the
process cache, in ring-buffer order, before the document is built."""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from typing import TYPE_CHECKING

from codegen.constants import COREDUMPED, EXITED, SIGNALED

from ..mounts import MountTable
from ..paths import join_lexically
from ..process.cache import ExecInfo, FileDoc
from ..process.procfs import ProcEntry
from ..users import UserNames
from .decode import ExecRecord, ExitRecord, FileObj, ForkRecord
from .documents import MEMFD_PREFIX, RS_FILE_DISCONNECTED, RS_FILE_PRESENT, file_doc, path_fields
from .layout import layout
from .process_docs import body_doc

if TYPE_CHECKING:
    from .resolve import Document, Resolver

log = logging.getLogger(__name__)

_L = layout()
RS_EXEC_SCRIPT = _L.const("RS_EXEC_SCRIPT")
RS_EXEC_SCRIPT_FROM_NAME = _L.const("RS_EXEC_SCRIPT_FROM_NAME")
RS_ARGS_TRUNCATED = _L.const("RS_ARGS_TRUNCATED")
RS_ENVS_TRUNCATED = _L.const("RS_ENVS_TRUNCATED")


class FileDocs:
    """Executable file documents shared by every image of the same file
    (a host runs few distinct executables, many times): bounded, least
    recently used first out."""

    def __init__(self, size: int = 4096) -> None:
        self._docs: OrderedDict[FileObj, Document] = OrderedDict()
        self._size = size

    def get(self, res: Resolver, f: FileObj) -> Document:
        doc = self._docs.get(f)
        if doc is None:
            doc = self._docs[f] = res.file(f)
            if len(self._docs) > self._size:
                self._docs.popitem(last=False)
        else:
            self._docs.move_to_end(f)
        return doc


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


class ProcessResolver:
    def __init__(self, res: Resolver) -> None:
        self.res = res
        self.files = FileDocs()

    def exec(self, e: ExecRecord) -> Document:
        res, env = self.res, self.res.env
        task = e.task
        flags = e.args_flags
        interpreter = self.files.get(res, e.interpreter) if flags & RS_EXEC_SCRIPT else None
        if flags & RS_EXEC_SCRIPT_FROM_NAME:
            file = file_from_name(e.filename, e.hdr.pid)
        else:
            file = self.files.get(res, e.file)
        info = ExecInfo(
            comm=task.comm,
            file=file,
            argv=e.argv,
            args_truncated=bool(flags & RS_ARGS_TRUNCATED),
            creds=task.creds,
            meta=e.meta,
            interpreter=interpreter,
            envp=e.envp,
            envs_truncated=bool(flags & RS_ENVS_TRUNCATED),
        )
        image = env.processes.on_exec(e.hdr.pid, task.start_boot_ns, env.clock.to_epoch(e.hdr.timestamp),
                                      info, kernel_ppid=task.ppid)
        doc = res.envelope(e.hdr, task, image=image)
        body = body_doc(doc["process"])
        body["old_tid"] = e.old_tid  # != pid: execve from a non-leader thread
        doc["exec"] = body
        return doc

    def fork(self, e: ForkRecord) -> Document:
        res, env = self.res, self.res.env
        parent_task = e.task
        child = env.processes.on_fork(
            e.child_pid, e.child_start_time, e.parent_pid, e.parent_start_time,
            creds=parent_task.creds, meta=e.child, parent_comm=parent_task.comm,
        )
        # The child runs with a copy of the parent's credentials and comm.
        child_task = parent_task._replace(ppid=e.parent_pid, start_boot_ns=e.child_start_time)
        doc = res.envelope(e.hdr, child_task, pid=e.child_pid, image=child)
        body = body_doc(doc["process"])
        body.update(parent_pid=e.parent_pid, child_pid=e.child_pid)
        doc["fork"] = body
        return doc

    def exit(self, e: ExitRecord) -> Document | None:
        status = e.exit_code
        known = self.res.env.processes.peek(e.hdr.pid, e.task.start_boot_ns)
        if known is not None and known.exited_at is not None:
            # Two threads leaving at once can both see the group's live count
            # at 0 by the time each reaches the exit tracepoint: one exit only.
            self.res.env.processes.stats.duplicate_exits += 1
            return None
        doc = self.res.envelope(e.hdr, e.task)
        self.res.env.processes.on_exit(e.hdr.pid, e.task.start_boot_ns, doc["timestamp"], status)
        body = body_doc(doc["process"])
        body.update(exit_fields(status))
        doc["exit"] = body
        return doc


def exit_fields(status: int) -> Document:
    """``exit.code``/``exit.cause`` from a wait status, as the reference does:
    EXITED with the exit code, or SIGNALED/COREDUMPED with the signal number."""
    sig = status & 0x7F
    if sig == 0:
        return {"cause": EXITED, "code": (status >> 8) & 0xFF}
    return {"cause": COREDUMPED if status & 0x80 else SIGNALED, "code": sig}


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
        # a memfd's /proc name ("/memfd:NAME (deleted)"): no directory holds it,
        # as the kernel side says of its dentry
        flags = RS_FILE_PRESENT
        if entry.exe.startswith(MEMFD_PREFIX) and st.nlink == 0:
            flags |= RS_FILE_DISCONNECTED
        return file_doc(
            entry.exe, inode=st.inode, mount_id=st.mount_id, mode=st.mode, uid=st.uid, gid=st.gid,
            fs_type=mount.fs_type if mount else "", flags=flags, ctime_ns=st.ctime_ns,
            mtime_ns=st.mtime_ns, users=users, nlink=st.nlink,
        )

    return build

"""Resolving process-activity records (struct rs_activity_event): ptrace,
signal, setuid, setgid, capset, memfd_create, splice, prctl, chdir,
unshare, setns, cgroup_write.

- Credentials: a setuid/setgid/capset record carries the caller's
  credentials after the call, read from the kernel; the process cache's
  image takes them (``ProcessCache.on_credentials``) before the document is
  built, so every later event of the process and every descendant's
  ``ancestors`` show them.
- Other processes (``ptrace.tracee``, ``signal.target``, ``setns.target``):
  the task the kernel named (struct rs_target: pid, start time, credentials
  then) is looked up in the process cache and shown with its lineage, as
  ``process`` is. When the kernel named none (a call refused before any
  hook saw its target, on the tracepoint set) and the caller's pid
  namespace is the host's, the image the cache has for the pid argument
  stands in (the cache only: /proc would also answer for a thread id);
  otherwise only the pid is known, or nothing.
- Files (``chdir.file``, ``splice.file``, ``memfd_create.file``,
  ``cgroup_write.file``) are resolved as a file event's ``file`` is
  (agent/events/file_events.py).
- cgroup_write has no ``retval``: its record is made inside the write, once
  the migration succeeded (ebpf/hooks/cgroup.h).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.evaluator.event import Lazy
from codegen.eventtypes import PRODUCED

from .decode import NO_FILE, ActivityRecord
from .layout import layout
from .process_docs import ancestor_docs, image_doc, process_doc

if TYPE_CHECKING:
    from .file_events import FileEventResolver
    from .resolve import Document, Resolver

log = logging.getLogger(__name__)

_L = layout()
RS_ACT_PIDFD = _L.const("RS_ACT_PIDFD")
RS_ACT_NS_FILE = _L.const("RS_ACT_NS_FILE")
RS_ACT_PIPE_OUT = _L.const("RS_ACT_PIPE_OUT")
RS_FILE_PRESENT = _L.const("RS_FILE_PRESENT")
PR_SET_NAME = _L.const("RS_PR_SET_NAME")
COMM_KEPT = _L.const("RS_COMM_LEN") - 1      # bytes of a name the kernel keeps
MEMFD_NAME_PREFIX = "memfd:"                 # mm/memfd.c: the file's name is "memfd:" + the caller's
CREDENTIAL_TYPES = frozenset({"setuid", "setgid", "capset"})
# recorded inside the call, before it returns (cgroup_write): the table gives them no retval field
NO_RETVAL_TYPES = frozenset(t.name for t in PRODUCED if t.record == "rs_activity_event"
                            and all(f.suffix != "retval" for f in t.fields))
_U32 = 0xFFFFFFFF


def _int(v: int) -> int:
    """A C int argument from its 64-bit register."""
    v &= _U32
    return v - (1 << 32) if v & 0x80000000 else v


class HostNamespaces:
    """The host's namespaces by kind ("mnt", "net"...): their inode numbers,
    read once - those of pid 1 as the agent sees it, or, where pid 1's are
    not readable (an init more privileged than the agent), the agent's own."""

    def __init__(self, dirs: tuple[str, ...] = ("/proc/1/ns", "/proc/self/ns")) -> None:
        self._dirs = dirs
        self._inodes: dict[str, int | None] = {}

    def inode(self, kind: str) -> int | None:
        if kind not in self._inodes:
            self._inodes[kind] = None
            for d in self._dirs:
                try:
                    self._inodes[kind] = os.stat(f"{d}/{kind}").st_ino
                    break
                except OSError as exc:
                    log.debug("cannot read %s/%s: %s", d, kind, exc)
        return self._inodes[kind]

    def is_host(self, kind: str, inum: int) -> bool:
        return bool(kind) and inum != 0 and self.inode(kind) == inum


class ActivityResolver:
    def __init__(self, res: Resolver, files: FileEventResolver) -> None:
        self.res = res
        self.files = files
        self.host_ns = HostNamespaces()
        self._bodies: dict[str, Callable[[ActivityRecord, Document], None]] = {
            "ptrace": self._ptrace, "signal": self._signal, "setuid": self._setuid, "setgid": self._setgid,
            "capset": self._capset, "memfd_create": self._memfd_create, "splice": self._splice,
            "prctl": self._prctl, "chdir": self._chdir, "unshare": self._unshare, "setns": self._setns,
            "cgroup_write": self._cgroup_write,
        }

    def resolve(self, e: ActivityRecord) -> Document:
        name = e.hdr.type
        if name in CREDENTIAL_TYPES:
            self.res.env.processes.on_credentials(e.hdr.pid, e.task.start_boot_ns, e.task.creds)
        doc = self.res.envelope(e.hdr, e.task)
        body: Document = {} if name in NO_RETVAL_TYPES else {"retval": e.retval}
        self._bodies[name](e, body)
        doc[name] = body
        return doc

    # -- other processes ---------------------------------------------------------
    def _process(self, e: ActivityRecord, pid_arg: int) -> Document | None:
        """The process the call acts on (see the module docstring)."""
        env = self.res.env
        t = e.target
        if t is not None:
            task = t.task
            image = env.processes.for_event(t.pid, t.start_time, ppid=task.ppid, comm=task.comm,
                                            creds=lambda: task.creds)
            return process_doc(image, pid=t.pid, tid=t.tid, task=task, users=env.users)
        if pid_arg <= 0 or e.pidns_level != 0:
            return None
        proc = env.processes.peek(pid_arg)
        if proc is None:
            return {"pid": pid_arg}
        doc = dict(image_doc(proc, env.users, keep=proc.exited_at is None))
        doc["ancestors"] = Lazy(lambda: ancestor_docs(proc, env.users))
        return doc

    def _file(self, e: ActivityRecord, *, follow: bool = False) -> Document:
        return self.files.file_object(e.file, e.str, e.base, e.root, follow=follow)

    # -- one body per type -------------------------------------------------------------
    def _ptrace(self, e: ActivityRecord, body: Document) -> None:
        body["request"] = _arg(e, "request")
        body["address"] = _arg(e, "addr", c_int=False)
        tracee = self._process(e, _arg(e, "pid") or 0)
        if tracee is not None:
            body["tracee"] = tracee

    def _signal(self, e: ActivityRecord, body: Document) -> None:
        pid_arg = _arg(e, "pid") or 0   # pidfd_send_signal names its target by a pidfd
        body["type"] = _arg(e, "sig")
        body["pid"] = e.target.pid if e.target is not None else pid_arg
        target = self._process(e, pid_arg)
        if target is not None:
            body["target"] = target

    def _setuid(self, e: ActivityRecord, body: Document) -> None:
        t, users = e.task, self.res.env.users
        body.update(uid=t.uid, euid=t.euid, fsuid=t.fsuid, user=Lazy(lambda: users.user(t.uid)),
                    euser=Lazy(lambda: users.user(t.euid)), fsuser=Lazy(lambda: users.user(t.fsuid)))

    def _setgid(self, e: ActivityRecord, body: Document) -> None:
        t, users = e.task, self.res.env.users
        body.update(gid=t.gid, egid=t.egid, fsgid=t.fsgid, group=Lazy(lambda: users.group(t.gid)),
                    egroup=Lazy(lambda: users.group(t.egid)), fsgroup=Lazy(lambda: users.group(t.fsgid)))

    def _capset(self, e: ActivityRecord, body: Document) -> None:
        body.update(cap_effective=e.task.cap_effective, cap_permitted=e.task.cap_permitted)

    def _memfd_create(self, e: ActivityRecord, body: Document) -> None:
        name = e.str.decode("utf-8", "backslashreplace")
        if e.file.flags & RS_FILE_PRESENT:
            file = self._file_of_fd(e)
            kernel_name = str(file.get("name", ""))
            if kernel_name.startswith(MEMFD_NAME_PREFIX):
                name = kernel_name[len(MEMFD_NAME_PREFIX):]
            body["file"] = file
        body["name"] = name
        body["flags"] = (_arg(e, "flags", c_int=False) or 0) & _U32

    def _splice(self, e: ActivityRecord, body: Document) -> None:
        if e.file is not NO_FILE:
            body["file"] = self._file_of_fd(e)
        body["pipe_entry_flag"] = e.pipe_entry_flags
        body["pipe_exit_flag"] = e.pipe_exit_flags if e.flags & RS_ACT_PIPE_OUT else 0

    def _prctl(self, e: ActivityRecord, body: Document) -> None:
        option = _arg(e, "option")
        body["option"] = option
        if option == PR_SET_NAME:
            body["new_name"] = e.str.decode("utf-8", "backslashreplace")
            body["is_name_truncated"] = len(e.str) > COMM_KEPT
            if e.retval == 0 and e.hdr.tid == e.hdr.pid:
                self.res.env.processes.on_comm(e.hdr.pid, e.task.start_boot_ns, e.task.comm)

    def _chdir(self, e: ActivityRecord, body: Document) -> None:
        body["file"] = self._file(e, follow=True)
        body["syscall"] = {"path": e.str.decode("utf-8", "backslashreplace")}

    def _unshare(self, e: ActivityRecord, body: Document) -> None:
        flags = _arg(e, "flags", c_int=False)  # unsigned long: CLONE_* above bit 31 too
        body["flags"] = e.clone_flags if flags is None else flags  # clone3: from its struct clone_args

    def _setns(self, e: ActivityRecord, body: Document) -> None:
        kind = e.ns_name.decode("ascii", "replace")
        body["nstype"] = _arg(e, "flags")
        body["namespace"] = {
            "type": e.ns_type,
            "name": kind,
            "inode": e.ns_inum,
            "is_host": bool(e.flags & RS_ACT_NS_FILE) and self.host_ns.is_host(kind, e.ns_inum),
        }
        if e.flags & RS_ACT_PIDFD:
            target = self._process(e, 0)
            if target is not None:
                body["target"] = target

    def _cgroup_write(self, e: ActivityRecord, body: Document) -> None:
        if e.target is not None:
            body["pid"] = e.target.pid
        if e.file.flags & RS_FILE_PRESENT:
            body["file"] = self._file_of_fd(e)

    # -- helpers -------------------------------------------------------------------
    def _file_of_fd(self, e: ActivityRecord) -> Document:
        return self.files.file_object(e.file, b"", NO_FILE, b"/", follow=False)


def _role_positions() -> dict[tuple[str, int], dict[str, int]]:
    """(event type, syscall number) -> {role: argument position}, from the
    event-type table (codegen/eventtypes.py)."""
    from codegen.eventtypes import PRODUCED

    out: dict[tuple[str, int], dict[str, int]] = {}
    for t in PRODUCED:
        if t.record == "rs_activity_event":
            for sc in t.syscalls:
                out[(t.name, _L.const(f"RS_NR_{sc.name}"))] = {r: i for i, r in enumerate(sc.args) if r}
    return out


_ROLES = _role_positions()


def _arg(e: ActivityRecord, role: str, *, c_int: bool = True) -> int | None:
    """The argument of the record's syscall that has ``role`` (a C int, or
    the whole register), or None when the syscall has none."""
    i = _ROLES.get((e.hdr.type, e.syscall_nr), {}).get(role)
    if i is None:
        return None
    return _int(e.args[i]) if c_int else e.args[i]

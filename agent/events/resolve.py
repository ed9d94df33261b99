"""Typed records -> event documents: the resolve stage.

Everything a record does not carry itself comes from the host's state here,
in ring-buffer order: paths placed on mounts (the mount table, refreshed on
mount/umount), user and group names, the process image of the event's task
and its lineage (the process cache, fed by exec/fork/exit records, /proc for
processes it never saw). A record that cannot be resolved is counted under
a reason in ``Resolver.errors`` and skipped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..clock import BootClock
from ..mounts import MountTable
from ..net.hostnames import HostnameCache
from ..process.cache import ProcessCache
from ..process.model import Process
from ..users import UserNames
from .decode import (
    ActivityRecord, BpfRecord, DnsRecord, ExecRecord, ExitRecord, FileObj, FileRecord, ForkRecord, Header,
    IoUringRecord, MemRecord, ModuleRecord, NetRecord, Record, TaskContext,
)
from .documents import file_doc
from .process_docs import process_doc

log = logging.getLogger(__name__)

Document = dict[str, Any]


@dataclass
class ResolveEnv:
    """The host state resolving reads and updates."""

    clock: BootClock
    processes: ProcessCache
    users: UserNames
    mounts: MountTable
    # network events: interface names by (netns inode, ifindex) (agent/net)
    ifname: Callable[[int, int], str | None] | None = None
    # connect.addr.hostname: names learned from DNS responses (agent/net/hostnames.py)
    hostnames: HostnameCache = field(default_factory=HostnameCache)


class Resolver:
    def __init__(self, env: ResolveEnv) -> None:
        from .activity_events import ActivityResolver
        from .file_events import FileEventResolver
        from .kernel_events import KernelEventResolver
        from .net_events import NetResolver
        from .process_events import ProcessResolver

        self.env = env
        self.errors: Counter[str] = Counter()
        self.resolved = 0
        files = FileEventResolver(self)
        procs = ProcessResolver(self)
        kernel = KernelEventResolver(self)
        net = NetResolver(self)
        self._by_class: dict[type, Callable[[Any], Document | None]] = {
            FileRecord: files.resolve,
            ExecRecord: procs.exec,
            ForkRecord: procs.fork,
            ExitRecord: procs.exit,
            ActivityRecord: ActivityResolver(self, files).resolve,
            ModuleRecord: kernel.module,
            BpfRecord: kernel.bpf,
            MemRecord: kernel.mem,
            IoUringRecord: kernel.io_uring,
            NetRecord: net.net,
            DnsRecord: net.dns,
        }

    def resolve(self, rec: Record) -> Document | None:
        try:
            doc = self._by_class[rec.__class__](rec)
        except (ValueError, KeyError, IndexError, OverflowError, OSError) as exc:
            self.errors[f"{rec.hdr.type}: {type(exc).__name__}"] += 1
            log.debug("cannot resolve a %s record: %s", rec.hdr.type, exc)
            return None
        if doc is not None:
            self.resolved += 1
        return doc

    # -- helpers for the resolvers ---------------------------------------------
    def file(self, f: FileObj, path: bytes | None = None) -> Document:
        return file_doc(
            f.path if path is None else path,
            inode=f.inode, mount_id=f.mount_id, mode=f.mode, uid=f.uid, gid=f.gid, fs_type=f.fstype,
            flags=f.flags, ctime_ns=f.ctime_ns, mtime_ns=f.mtime_ns, users=self.env.users, nlink=f.nlink,
        )

    def envelope(self, hdr: Header, task: TaskContext, pid: int | None = None,
                 image: Process | None = None) -> Document:
        """``type``, ``timestamp`` and ``process`` of an event. The image is
        the cache's for (pid, task start time) unless given."""
        pid = hdr.pid if pid is None else pid
        env = self.env
        ts = env.clock.to_epoch(hdr.timestamp)
        if image is None:
            image = env.processes.for_event(pid, task.start_boot_ns, ppid=task.ppid,
                                            comm=task.comm, creds=lambda: task.creds, at=ts)
        return {
            "type": hdr.type,
            "timestamp": ts,
            "process": process_doc(image, pid=pid, tid=hdr.tid, task=task, users=env.users),
        }

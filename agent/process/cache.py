"""The process cache: pid -> current image, fed by fork/exec/exit events and
seeded from /proc at start.

Exited images stay resolvable for ``retention_ns`` after exit (events of a
short-lived process can still be in flight, and its children point at it);
children keep their parents alive through ``Process.parent`` regardless.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..clock import BootClock
from .model import Process
from .procfs import ProcEntry, list_pids, read_process

log = logging.getLogger(__name__)


@dataclass
class CacheStats:
    forks: int = 0
    execs: int = 0
    exits: int = 0
    snapshot: int = 0
    procfs_fallbacks: int = 0
    evicted: int = 0


FileDoc = Callable[[ProcEntry], "dict[str, Any] | None"]


class ProcessCache:
    def __init__(
        self,
        clock: BootClock,
        *,
        max_entries: int = 65536,
        retention_ns: int = 60 * 1_000_000_000,
        file_doc: FileDoc | None = None,
    ) -> None:
        self._clock = clock
        self._live: dict[int, Process] = {}
        self._exited: OrderedDict[int, Process] = OrderedDict()
        self._max = max_entries
        self._retention = retention_ns
        self._file_doc = file_doc or _exe_doc
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._live) + len(self._exited)

    # -- seeding ---------------------------------------------------------
    def snapshot(self) -> int:
        """Create entries for every process already running; returns the count."""
        entries = [e for e in (read_process(pid) for pid in list_pids()) if e is not None]
        by_pid = {e.pid: e for e in entries}
        for entry in sorted(entries, key=lambda e: e.start_boot_ns):
            self._from_proc(entry, by_pid)
        self.stats.snapshot = len(entries)
        return len(entries)

    def _from_proc(self, entry: ProcEntry, by_pid: dict[int, ProcEntry] | None = None) -> Process:
        existing = self._live.get(entry.pid)
        if existing is not None:
            return existing
        parent = self._live.get(entry.ppid)
        if parent is None and entry.ppid > 0 and by_pid is not None and entry.ppid in by_pid:
            parent = self._from_proc(by_pid[entry.ppid], by_pid)
        proc = Process(
            pid=entry.pid,
            ppid=entry.ppid,
            parent=parent,
            created_at=self._clock.to_epoch(entry.start_boot_ns),
            comm=entry.comm,
            file=self._file_doc(entry),
            argv=entry.argv,
            from_snapshot=True,
        )
        self._live[entry.pid] = proc
        return proc

    # -- lookups -----------------------------------------------------------
    def get(self, pid: int) -> Process | None:
        """The current image of ``pid``, or its last one if it exited recently;
        falls back to /proc for a pid the agent has never seen."""
        proc = self._live.get(pid) or self._exited.get(pid)
        if proc is not None:
            return proc
        entry = read_process(pid)
        if entry is None:
            return None
        self.stats.procfs_fallbacks += 1
        return self._from_proc(entry)

    # -- events --------------------------------------------------------------
    def on_fork(self, child_pid: int, parent_pid: int, start_epoch_ns: int) -> Process:
        self.stats.forks += 1
        parent = self.get(parent_pid)
        child = Process(
            pid=child_pid,
            ppid=parent_pid,
            parent=parent,
            created_at=start_epoch_ns,
            comm=parent.comm if parent else "",
            file=parent.file if parent else None,
            argv=list(parent.argv) if parent else [],
            args_truncated=parent.args_truncated if parent else False,
        )
        self._exited.pop(child_pid, None)
        self._live[child_pid] = child
        self._bound()
        return child

    def on_exec(
        self,
        pid: int,
        exec_epoch_ns: int,
        *,
        comm: str,
        file: dict[str, Any] | None,
        argv: list[str],
        args_truncated: bool,
        interpreter: dict[str, Any] | None = None,
    ) -> Process:
        self.stats.execs += 1
        prev = self.get(pid)
        proc = Process(
            pid=pid,
            ppid=prev.ppid if prev else 0,
            parent=prev.parent if prev else None,
            created_at=prev.created_at if prev else exec_epoch_ns,
            exec_time=exec_epoch_ns,
            comm=comm,
            file=file,
            argv=argv,
            args_truncated=args_truncated,
            interpreter=interpreter,
        )
        self._live[pid] = proc
        return proc

    def on_exit(self, pid: int, exit_epoch_ns: int, exit_code: int) -> Process | None:
        self.stats.exits += 1
        proc = self._live.pop(pid, None) or self.get(pid)
        if proc is None:
            return None
        proc.exited_at = exit_epoch_ns
        proc.exit_code = exit_code
        self._live.pop(pid, None)
        self._exited[pid] = proc
        self._exited.move_to_end(pid)
        self._expire(exit_epoch_ns)
        return proc

    # -- bounds --------------------------------------------------------------
    def _expire(self, now_ns: int) -> None:
        while self._exited:
            pid, proc = next(iter(self._exited.items()))
            if proc.exited_at is not None and now_ns - proc.exited_at < self._retention:
                break
            del self._exited[pid]
        self._bound()

    def _bound(self) -> None:
        while len(self) > self._max and self._exited:
            self._exited.popitem(last=False)
            self.stats.evicted += 1


def _exe_doc(entry: ProcEntry) -> dict[str, Any] | None:
    if entry.exe is None:
        return None
    from ..paths import basename, decode_path

    path, raw = decode_path(entry.exe)
    doc: dict[str, Any] = {"path": path, "name": decode_path(basename(entry.exe))[0], "inode": entry.exe_inode}
    if raw is not None:
        doc["path_raw_b64"] = raw
    return doc

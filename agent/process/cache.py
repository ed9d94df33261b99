"""The process cache: pid -> current image, fed by fork/exec/exit events (in
ring-buffer order, before each event's document is built) and seeded from
/proc at start.

Identity: a process instance is (pid, start time). Every record carries the
task's start time (rs_proc_ctx.start_time), so a lookup never hands out the
image of an earlier process that had the same pid (pid reuse, a missed exit).

Index and memory bounds:
- ``live``: pid -> current image of a running process;
- ``exited``: pid -> last image of an exited process, oldest exit first,
  kept ``retention_ns`` so that late references still resolve;
- ``len(cache)`` (live + exited) never exceeds ``max_entries``: past it the
  oldest exited images are evicted first (``stats.evicted_exited``); live
  images are dropped only when live alone exceeds the cap — first those gone
  from /proc (missed exits, ``stats.stale_live``), then the oldest
  (``stats.evicted_live``).
- Lineage is held by references, not by the index: a live process keeps its
  chain of ancestors (exited or not) alive, however long ago they left the
  index. A chain deeper than ``max_depth`` is cut ``ancestor_limit`` levels
  above the new process (``stats.lineage_cuts``), which bounds what one
  pathological fork chain can pin.

Threads: the cache is keyed by thread-group id; thread creation and exit are
not reported by the kernel side, an execve from a non-leader thread is an exec
of the same pid (de_thread makes it the leader).
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..clock import BootClock
from .model import Credentials, Process, Source, TaskMeta
from .procfs import ProcEntry, list_pids, read_process, same_start, tty_name

log = logging.getLogger(__name__)

FileDoc = Callable[[ProcEntry], "dict[str, Any] | None"]

DEFAULT_MAX_ENTRIES = 16384
DEFAULT_RETENTION_NS = 60 * 1_000_000_000
_PRUNE_INTERVAL_NS = 1_000_000_000


@dataclass
class CacheStats:
    forks: int = 0
    execs: int = 0
    exits: int = 0
    snapshot: int = 0            # images created from the /proc snapshot at start
    procfs_fallbacks: int = 0    # images read from /proc later (missed fork/exec)
    procfs_misses: int = 0       # unknown pid, not in /proc either
    partial: int = 0             # images made from an event's task context alone
    evicted_exited: int = 0      # exited images dropped from the index by the cap
    evicted_live: int = 0        # live images dropped by the cap (live alone over it)
    stale_live: int = 0          # live images whose process was gone (missed exit)
    expired: int = 0             # exited images dropped after the retention time
    pid_reuse: int = 0           # a new instance replaced a live image of the same pid
    credential_changes: int = 0  # setuid/setgid/capset events that changed an image's credentials
    lineage_cuts: int = 0
    duplicate_exits: int = 0     # a second exit record of one process (two threads leaving at once)

    @property
    def evicted(self) -> int:
        return self.evicted_exited + self.evicted_live

    def as_dict(self) -> dict[str, int]:
        out = {k: v for k, v in vars(self).items() if isinstance(v, int)}
        out["evicted"] = self.evicted
        return out


@dataclass(frozen=True, slots=True)
class ExecInfo:
    """What an exec record says about the new image."""

    comm: str
    file: dict[str, Any] | None
    argv: tuple[str, ...]
    args_truncated: bool
    creds: Credentials
    meta: TaskMeta
    interpreter: dict[str, Any] | None = None
    envp: tuple[str, ...] | None = None
    envs_truncated: bool = False


@dataclass
class ProcessCache:
    clock: BootClock
    max_entries: int = DEFAULT_MAX_ENTRIES
    retention_ns: int = DEFAULT_RETENTION_NS
    max_depth: int = 1024
    ancestor_limit: int = 256
    file_doc: FileDoc | None = None
    stats: CacheStats = field(default_factory=CacheStats)

    def __post_init__(self) -> None:
        if self.max_entries < 1:
            raise ValueError(f"process cache max_entries must be positive, got {self.max_entries}")
        self._live: dict[int, Process] = {}
        self._exited: OrderedDict[int, Process] = OrderedDict()
        # Cookies: a random 32-bit base per agent run, then a counter.
        self._cookies = itertools.count((random.getrandbits(31) << 32) + 1)
        self._last_prune = 0
        self._file_doc: FileDoc = self.file_doc or _exe_doc

    def __len__(self) -> int:
        return len(self._live) + len(self._exited)

    @property
    def live_count(self) -> int:
        return len(self._live)

    @property
    def exited_count(self) -> int:
        return len(self._exited)

    # -- seeding ---------------------------------------------------------
    def snapshot(self) -> int:
        """Create entries for every process already running; returns the count."""
        entries = [e for e in (read_process(pid) for pid in list_pids()) if e is not None]
        by_pid = {e.pid: e for e in entries}
        for entry in sorted(entries, key=lambda e: e.start_boot_ns):
            self._from_proc(entry, Source.SNAPSHOT, by_pid)
        self.stats.snapshot = len(entries)
        self._bound()
        return len(entries)

    def _from_proc(self, entry: ProcEntry, source: Source,
                   by_pid: dict[int, ProcEntry] | None = None, depth: int = 0) -> Process:
        existing = self._live.get(entry.pid)
        if existing is not None and same_start(existing.start_boot_ns, entry.start_boot_ns):
            return existing
        parent = self._live.get(entry.ppid)
        if parent is None and entry.ppid > 0 and depth < self.ancestor_limit:
            if by_pid is not None:
                pentry = by_pid.get(entry.ppid)
            else:
                pentry = read_process(entry.ppid)
                if pentry is not None:
                    self.stats.procfs_fallbacks += 1
            if pentry is not None:
                parent = self._from_proc(pentry, source, by_pid, depth + 1)
        file = self._file_doc(entry)
        argv = tuple(entry.argv)
        # The reference agent's "thread": forked and not exec'd since. /proc
        # does not say so directly; a forked child keeps its parent's stack
        # address while an exec gets a new one (ASLR), so: the parent's
        # program, arguments and stack start. (Without ASLR two execs of one
        # program can share a stack address: then this may say thread.)
        is_thread = False
        if (parent is not None and entry.exe is not None and parent.file is not None and entry.start_stack
                and (file or {}).get("path") == parent.file.get("path") and argv == parent.argv):
            pentry = by_pid.get(entry.ppid) if by_pid is not None else read_process(entry.ppid)
            is_thread = pentry is not None and pentry.start_stack == entry.start_stack
        proc = Process(
            pid=entry.pid,
            ppid=entry.ppid,
            parent=parent,
            created_at=self.clock.to_epoch(entry.start_boot_ns),
            start_boot_ns=entry.start_boot_ns,
            start_exact=False,
            source=source,
            cookie=next(self._cookies),
            comm=entry.comm,
            file=file,
            argv=argv,
            creds=Credentials(entry.uids[0], entry.gids[0], entry.uids[1], entry.gids[1],
                              entry.uids[3], entry.gids[3], entry.cap_effective, entry.cap_permitted),
            tty_name=tty_name(entry.tty_nr),
            container_id=entry.container_id,
            is_kworker=entry.kthread,
            auid=entry.auid,
            cgroup_id=entry.cgroup_id,
            is_thread=is_thread,
            depth=parent.depth + 1 if parent else 0,
        )
        if existing is not None:
            self.stats.pid_reuse += 1
        self._live[entry.pid] = proc
        return proc

    # -- lookups -----------------------------------------------------------
    def _matches(self, proc: Process, start_boot_ns: int | None) -> bool:
        if start_boot_ns is None or start_boot_ns == 0:
            return True
        if proc.start_exact:
            return proc.start_boot_ns == start_boot_ns
        if same_start(start_boot_ns, proc.start_boot_ns):
            # a /proc image meets the kernel's exact start time: adopt it
            proc.start_boot_ns = start_boot_ns
            proc.start_exact = True
            return True
        return False

    def peek(self, pid: int, start_boot_ns: int | None = None) -> Process | None:
        """The cached image of this process instance, without /proc."""
        proc = self._live.get(pid)
        if proc is not None and self._matches(proc, start_boot_ns):
            return proc
        proc = self._exited.get(pid)
        if proc is not None and self._matches(proc, start_boot_ns):
            return proc
        return None

    def get(self, pid: int, start_boot_ns: int | None = None) -> Process | None:
        """The image of process (pid, start): the current one, or the last one
        if it exited recently; falls back to /proc for an instance the agent
        has not seen (its fork was missed)."""
        proc = self.peek(pid, start_boot_ns)
        if proc is not None:
            return proc
        entry = read_process(pid)
        if entry is None or (start_boot_ns and not same_start(start_boot_ns, entry.start_boot_ns)):
            self.stats.procfs_misses += 1
            return None
        self.stats.procfs_fallbacks += 1
        proc = self._from_proc(entry, Source.PROCFS)
        self._bound()
        return proc

    def for_event(self, pid: int, start_boot_ns: int, *, ppid: int, comm: str,
                  creds: Callable[[], Credentials], at: int | None = None) -> Process:
        """The image an event of (pid, start) at epoch ns ``at`` belongs to:
        the current one, or the one it replaced when the event predates the
        exec; when neither the cache nor /proc knows the process, an image
        made from the event's task context, its parent being the kernel's
        current one."""
        proc = self.get(pid, start_boot_ns)
        if proc is not None:
            while at is not None and proc.exec_time > at and proc.previous is not None:
                proc = proc.previous
            return proc
        self.stats.partial += 1
        parent = self.get(ppid) if ppid else None
        proc = Process(
            pid=pid, ppid=ppid, parent=parent, created_at=self.clock.to_epoch(start_boot_ns),
            start_boot_ns=start_boot_ns, source=Source.PARTIAL, cookie=next(self._cookies),
            comm=comm, creds=creds(), depth=parent.depth + 1 if parent else 0,
        )
        self._put_live(proc)
        return proc

    # -- events --------------------------------------------------------------
    def on_fork(self, child_pid: int, child_start_ns: int, parent_pid: int, parent_start_ns: int,
                *, creds: Credentials, meta: TaskMeta, parent_comm: str = "") -> Process:
        self.stats.forks += 1
        parent = self.get(parent_pid, parent_start_ns)
        child = Process(
            pid=child_pid,
            ppid=parent_pid,
            parent=parent,
            created_at=self.clock.to_epoch(child_start_ns),
            start_boot_ns=child_start_ns,
            source=Source.FORK,
            cookie=next(self._cookies),
            comm=parent.comm if parent else parent_comm,
            file=parent.file if parent else None,
            interpreter=parent.interpreter if parent else None,
            argv=parent.argv if parent else (),
            args_truncated=parent.args_truncated if parent else False,
            envp=parent.envp if parent else None,
            envs_truncated=parent.envs_truncated if parent else False,
            creds=creds,
            tty_name=meta.tty_name,
            container_id=meta.container_id,
            is_kworker=meta.is_kworker,
            auid=meta.auid,
            cgroup_id=meta.cgroup_id,
            is_thread=True,
            depth=parent.depth + 1 if parent else 0,
        )
        if child.depth > self.max_depth:
            self._cut_lineage(child)
        self._put_live(child)
        return child

    def on_exec(self, pid: int, start_boot_ns: int, exec_epoch_ns: int, info: ExecInfo,
                *, kernel_ppid: int = 0) -> Process:
        self.stats.execs += 1
        prev = self.get(pid, start_boot_ns)
        if prev is not None:
            parent, ppid, created_at = prev.parent, prev.ppid, prev.created_at
            depth = prev.depth
        else:
            # fork missed and /proc gone: the kernel's parent is the best we know
            parent = self.get(kernel_ppid) if kernel_ppid else None
            ppid, created_at = kernel_ppid, self.clock.to_epoch(start_boot_ns)
            depth = parent.depth + 1 if parent else 0
        proc = Process(
            pid=pid,
            ppid=ppid,
            parent=parent,
            created_at=created_at,
            start_boot_ns=start_boot_ns,
            source=Source.EXEC,
            cookie=next(self._cookies),
            exec_time=exec_epoch_ns,
            comm=info.comm,
            file=info.file,
            interpreter=info.interpreter,
            argv=info.argv,
            args_truncated=info.args_truncated,
            envp=info.envp,
            envs_truncated=info.envs_truncated,
            creds=info.creds,
            tty_name=info.meta.tty_name,
            container_id=info.meta.container_id,
            is_kworker=info.meta.is_kworker,
            auid=info.meta.auid,
            cgroup_id=info.meta.cgroup_id,
            is_thread=False,
            depth=depth,
        )
        if prev is not None:
            # keep the image it replaces, and that one's only: bounded memory
            proc.previous = prev
            prev.previous = None
        self._live[pid] = proc  # same instance: replaces its previous image
        self._bound()
        return proc

    def on_exit(self, pid: int, start_boot_ns: int, exit_epoch_ns: int, exit_code: int) -> Process | None:
        self.stats.exits += 1
        proc = self.peek(pid, start_boot_ns)
        if proc is None:
            return None
        proc.exited_at = exit_epoch_ns
        proc.exit_code = exit_code
        proc.doc = None  # rebuilt (and kept) only if it is shown again, as an ancestor
        proc.lineage_doc = None
        if self._live.get(pid) is proc:
            del self._live[pid]
        self._exited[pid] = proc
        self._exited.move_to_end(pid)
        self._expire(exit_epoch_ns)
        return proc

    def on_credentials(self, pid: int, start_boot_ns: int, creds: Credentials) -> Process | None:
        """A credentials change (setuid, setgid, capset): the image shows the
        new ones from now on, as the process and as anyone's ancestor."""
        proc = self.peek(pid, start_boot_ns)
        if proc is None or proc.creds == creds:
            return proc
        proc.creds = creds
        proc.doc = None  # rebuilt with the new credentials
        self.stats.credential_changes += 1
        return proc

    def on_comm(self, pid: int, start_boot_ns: int, comm: str) -> None:
        """The process renamed itself (prctl PR_SET_NAME by its leader)."""
        proc = self.peek(pid, start_boot_ns)
        if proc is not None and proc.comm != comm:
            proc.comm = comm
            proc.doc = None

    # -- bounds --------------------------------------------------------------
    def _put_live(self, proc: Process) -> None:
        old = self._live.get(proc.pid)
        if old is not None and not self._matches(old, proc.start_boot_ns):
            self.stats.pid_reuse += 1  # the earlier instance's exit was missed
        self._live[proc.pid] = proc
        self._bound()

    def _cut_lineage(self, child: Process) -> None:
        node = child.parent
        for _ in range(self.ancestor_limit - 1):
            if node is None or node.parent is None:
                return
            node = node.parent
        if node is not None and node.parent is not None:
            node.parent = None
            node.lineage_cut = True
            self.stats.lineage_cuts += 1
        child.depth = self.ancestor_limit

    def _expire(self, now_ns: int) -> None:
        while self._exited:
            pid, proc = next(iter(self._exited.items()))
            if proc.exited_at is not None and now_ns - proc.exited_at < self.retention_ns:
                break
            del self._exited[pid]
            self.stats.expired += 1
        self._bound()

    def _bound(self) -> None:
        while len(self) > self.max_entries and self._exited:
            self._exited.popitem(last=False)
            self.stats.evicted_exited += 1
        if len(self._live) > self.max_entries:
            self._shrink_live()

    def _shrink_live(self) -> None:
        """Live alone is over the cap: drop images of processes that are gone
        (missed exits), at most once a second, then the oldest."""
        target = max(1, self.max_entries * 9 // 10)
        now = time.monotonic_ns()
        if now - self._last_prune >= _PRUNE_INTERVAL_NS:
            self._last_prune = now
            running = set(list_pids())
            for pid in [p for p in self._live if p not in running]:
                del self._live[pid]
                self.stats.stale_live += 1
        if len(self._live) <= self.max_entries:
            return
        excess = len(self._live) - target
        oldest = sorted(self._live.values(), key=lambda p: p.start_boot_ns)[:excess]
        for proc in oldest:
            del self._live[proc.pid]
            self.stats.evicted_live += 1
        log.warning("process cache: %d live processes over the cap of %d; evicted the %d oldest "
                    "(raise the cap)", len(self._live) + excess, self.max_entries, excess)


def _exe_doc(entry: ProcEntry) -> dict[str, Any] | None:
    """A minimal file document for a /proc image (no mount table, no users)."""
    if entry.exe is None:
        return None
    from ..paths import basename, decode_path

    path, raw = decode_path(entry.exe)
    doc: dict[str, Any] = {"path": path, "name": decode_path(basename(entry.exe))[0], "inode": entry.exe_inode}
    if raw is not None:
        doc["path_raw_b64"] = raw
    return doc

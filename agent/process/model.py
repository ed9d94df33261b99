"""One process image: what a pid ran between two execs (or fork and exit)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from codegen.constants import AUDIT_AUID_UNSET as AUID_UNSET

# pids whose missing parent does not make a lineage incomplete: init and kthreadd
ROOT_PIDS = frozenset({0, 1, 2})


class Source(str, enum.Enum):
    """Where an image came from."""

    FORK = "fork"            # a fork event: a copy of the parent's image
    EXEC = "exec"            # an exec event
    SNAPSHOT = "snapshot"    # /proc, at start: the process predates the agent
    PROCFS = "procfs"        # /proc, later: its fork/exec events were missed
    PARTIAL = "partial"      # only the event's task context (gone from /proc too)


@dataclass(frozen=True, slots=True)
class Credentials:
    uid: int = 0
    gid: int = 0
    euid: int = 0
    egid: int = 0
    fsuid: int = 0
    fsgid: int = 0
    cap_effective: int = 0
    cap_permitted: int = 0


@dataclass(frozen=True, slots=True)
class TaskMeta:
    """struct rs_task_meta: tty, container, kernel-thread flag."""

    tty_name: str = ""
    container_id: str = ""
    is_kworker: bool = False
    auid: int = AUID_UNSET
    cgroup_id: int = 0


@dataclass(slots=True, eq=False)
class Process:
    """A process image.

    ``parent`` is the parent's image *at fork time*: lineage is recorded when
    the process is created, not read from the kernel's current real_parent,
    so an orphan reparented to init keeps its true ancestry, and a parent
    that later exec'd something else still shows what it was when it forked.
    An exec creates a new image for the same pid with the same parent.
    A live descendant holds its whole chain of (possibly exited) ancestors
    through these references, whatever the cache's pid index forgot.

    (pid, start_boot_ns) identifies a process instance: pids are reused,
    start times are not.
    """

    pid: int
    ppid: int
    parent: Process | None
    created_at: int                      # epoch ns: fork time of the pid
    start_boot_ns: int                   # CLOCK_BOOTTIME ns of the fork (task start_boottime)
    source: Source
    cookie: int = 0                      # unique per image
    start_exact: bool = True             # False: from /proc, clock-tick resolution
    exec_time: int = 0                   # epoch ns: when this image started (0: inherited at fork)
    comm: str = ""
    file: dict[str, Any] | None = None   # file document of the executable (the script for scripts)
    interpreter: dict[str, Any] | None = None  # scripts: file document of the interpreter
    argv: tuple[str, ...] = ()           # argv[0] included
    args_truncated: bool = False
    envp: tuple[str, ...] | None = None  # None: not captured
    envs_truncated: bool = False
    creds: Credentials = field(default_factory=Credentials)
    tty_name: str = ""
    container_id: str = ""
    is_kworker: bool = False
    auid: int = AUID_UNSET               # audit login uid (loginuid) when the image started
    cgroup_id: int = 0                   # cgroup v2 id when the image started (events: the task's now)
    is_thread: bool = False              # forked and not exec'd since (reference semantics)
    depth: int = 0                       # ancestors known when created
    lineage_cut: bool = False            # the chain above was cut to bound memory
    exited_at: int | None = None
    exit_code: int | None = None
    doc: dict[str, Any] | None = None    # cached image document (events/process_docs.py)
    # cached ancestors document: the chain and the image documents it was made from (events/process_docs.py)
    lineage_doc: tuple[list[Process], list[Any], list[Any]] | None = None
    # the image this exec replaced: an event of the old image read after the
    # exec (lifecycle and file events come on two ring buffers) still finds it
    previous: Process | None = None

    @property
    def from_snapshot(self) -> bool:
        return self.source is Source.SNAPSHOT

    def ancestors(self, limit: int = 256) -> tuple[list[Process], bool]:
        """Parent first, then its parent...; (chain, truncated).

        Truncated: the limit was hit, the chain was cut to bound memory, or
        it ends at a process other than init/kthreadd (its parent is unknown).
        """
        chain: list[Process] = []
        node = self.parent
        last: Process = self
        while node is not None:
            if len(chain) >= limit:
                return chain, True
            chain.append(node)
            last = node
            node = node.parent
        return chain, last.lineage_cut or last.pid not in ROOT_PIDS

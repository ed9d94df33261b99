"""One process image: what a pid ran between two execs (or fork and exit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, eq=False)
class Process:
    """A process image.

    ``parent`` is the parent's image *at fork time*: lineage is recorded when
    the process is created, not read from the kernel's current real_parent,
    so an orphan reparented to init keeps its true ancestry, and a parent
    that later exec'd something else still shows what it was when it forked.
    An exec creates a new image for the same pid with the same parent.
    """

    pid: int
    ppid: int
    parent: Process | None
    created_at: int                      # epoch ns: fork time of the pid
    exec_time: int = 0                   # epoch ns: when this image started (0: inherited at fork)
    comm: str = ""
    file: dict[str, Any] | None = None   # file document of the executable
    argv: list[str] = field(default_factory=list)
    args_truncated: bool = False
    interpreter: dict[str, Any] | None = None
    exited_at: int | None = None
    exit_code: int | None = None
    from_snapshot: bool = False          # seen in /proc at start, not born under the agent

    def ancestors(self, limit: int = 256) -> tuple[list[Process], bool]:
        """Parent first, then its parent...; (chain, truncated)."""
        chain: list[Process] = []
        node = self.parent
        while node is not None:
            if len(chain) >= limit:
                return chain, True
            chain.append(node)
            node = node.parent
        return chain, False

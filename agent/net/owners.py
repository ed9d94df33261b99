"""Which agent a tc filter or a clsact qdisc belongs to, and whether that
agent still runs.

Each agent names its filters ``rsagent:<pid>:<start>`` (TCA_BPF_NAME; start:
the process's start time in clock ticks, /proc/PID/stat field 22), so two
agents on one host never take each other's filters for leftovers, and a
reused pid is not mistaken for the agent that died. A qdisc carries no name:
the clsact qdiscs an agent created are listed in its state file
(``/run/rsagent/net/<pid>-<start>.json``, root-only), which the next start
reads when that agent died without removing them (kill -9).
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

STATE_DIR = Path("/run/rsagent/net")
PREFIX = "rsagent:"
_NAME_RE = re.compile(r"^rsagent:(\d+):(\d+)$")


@dataclass(frozen=True, order=True)
class Owner:
    pid: int
    start: int

    @property
    def filter_name(self) -> str:
        return f"{PREFIX}{self.pid}:{self.start}"

    def alive(self) -> bool:
        return process_start(self.pid) == self.start

    @classmethod
    def parse(cls, name: str | None) -> Owner | None:
        """The owner a filter name names, None for a filter not ours."""
        m = _NAME_RE.match(name or "")
        return cls(int(m.group(1)), int(m.group(2))) if m else None


def process_start(pid: int) -> int | None:
    """Start time of a process in clock ticks, None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'
    fields = text.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])  # field 22 overall
    except (IndexError, ValueError):
        return None


def me() -> Owner:
    pid = os.getpid()
    start = process_start(pid)
    if start is None:
        raise RuntimeError("cannot read /proc/self/stat: is /proc mounted?")
    return Owner(pid, start)


@dataclass
class State:
    """What an agent created that has no name of its own: clsact qdiscs,
    per namespace inode (with the path it was reached by)."""

    owner: Owner
    qdiscs: dict[int, dict[int, str]] = field(default_factory=dict)  # ns inode -> ifindex -> ifname
    paths: dict[int, str | None] = field(default_factory=dict)       # ns inode -> path (None: own ns)

    def to_json(self) -> str:
        return json.dumps({
            "pid": self.owner.pid, "start": self.owner.start,
            "namespaces": [{"inode": ino, "path": self.paths.get(ino),
                            "qdiscs": [[i, n] for i, n in sorted(q.items())]}
                           for ino, q in sorted(self.qdiscs.items())],
        })

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        st = cls(Owner(int(data["pid"]), int(data["start"])))
        for ns in data.get("namespaces", []):
            ino = int(ns["inode"])
            st.qdiscs[ino] = {int(i): str(n) for i, n in ns.get("qdiscs", [])}
            st.paths[ino] = ns.get("path")
        return st


class StateFiles:
    """The state files of every agent, in a root-only directory."""

    def __init__(self, directory: Path = STATE_DIR) -> None:
        self.directory = directory

    def path_of(self, owner: Owner) -> Path:
        return self.directory / f"{owner.pid}-{owner.start}.json"

    def _ensure_dir(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(self.directory)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise PermissionError(f"{self.directory}: must be a directory owned by uid {os.geteuid()} "
                                  f"with mode 0700 (remove it; the agent recreates it)")

    def write(self, state: State) -> None:
        """Atomically (a new file renamed over the old one), mode 0600."""
        self._ensure_dir()
        final = self.path_of(state.owner)
        tmp = final.with_name(final.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, state.to_json().encode())
        finally:
            os.close(fd)
        os.replace(tmp, final)

    def remove(self, owner: Owner) -> None:
        self.path_of(owner).unlink(missing_ok=True)

    def dead(self) -> Iterator[tuple[Path, State]]:
        """State files of agents that no longer run."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.json")):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd) as f:
                    state = State.from_json(f.read())
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("%s: unreadable agent state (%s); removing it", path, exc)
                path.unlink(missing_ok=True)
                continue
            if not state.owner.alive():
                yield path, state


__all__ = ["Owner", "State", "StateFiles", "me", "process_start", "STATE_DIR", "PREFIX"]

"""uid/gid -> user/group names, from /etc/passwd and /etc/group.

Names are looked up in files (not NSS: the agent must not block on a
directory service per event). The tables reload when either file's
mtime/size/inode changes: checked at most once a second, and at most every
50 ms on a lookup that misses (a user added just before the event names it).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.evaluator.event import Lazy

log = logging.getLogger(__name__)

_CHECK_NS = 1_000_000_000
_MISS_CHECK_NS = 50_000_000
_LAZY_MAX = 4096       # ids with a shared Lazy name (past it, the table starts again)


def _shared_lazy(table: dict[int, Lazy], key: int, lookup: Callable[[int], str]) -> Lazy:
    """The one Lazy of ``table`` for ``key`` resolving to ``lookup(key)`` (made on first use)."""
    lazy = table.get(key)
    if lazy is None:
        if len(table) >= _LAZY_MAX:
            table.clear()
        lazy = table[key] = Lazy(functools.partial(lookup, key))
    return lazy


def _parse(path: Path) -> dict[int, str]:
    names: dict[int, str] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        log.warning("cannot read %s: %s; names from it will be empty", path, exc)
        return names
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            names.setdefault(int(parts[2]), parts[0])
    return names


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class _Table:
    path: Path
    names: dict[int, str] = field(default_factory=dict)
    stamp: tuple[int, int, int] | None = None

    def reload_if_changed(self) -> None:
        stamp = _stamp(self.path)
        if stamp != self.stamp or stamp is None:
            self.names = _parse(self.path)
            self.stamp = stamp


class UserNames:
    def __init__(self, passwd: Path = Path("/etc/passwd"), group: Path = Path("/etc/group")) -> None:
        self._users = _Table(passwd)
        self._groups = _Table(group)
        self._checked = 0
        self._check()
        self._lazy_users: dict[int, Lazy] = {}
        self._lazy_groups: dict[int, Lazy] = {}

    def _check(self, interval: int = _CHECK_NS) -> None:
        now = time.monotonic_ns()
        if now - self._checked >= interval:
            self._checked = now
            self._users.reload_if_changed()
            self._groups.reload_if_changed()

    def _lookup(self, table: _Table, key: int) -> str:
        self._check()
        name = table.names.get(key)
        if name is None:
            self._check(_MISS_CHECK_NS)
            name = table.names.get(key, "")
        return name

    def user(self, uid: int) -> str:
        return self._lookup(self._users, uid)

    def lazy_user(self, uid: int) -> Lazy:
        """A document's ``user`` for ``uid``: its name looked up when read.
        One Lazy per id, shared by every document (a Lazy is immutable: a
        document resolving it replaces it with the name in that document)."""
        return _shared_lazy(self._lazy_users, uid, self.user)

    def lazy_group(self, gid: int) -> Lazy:
        """A document's ``group`` for ``gid`` (see lazy_user)."""
        return _shared_lazy(self._lazy_groups, gid, self.group)

    def group(self, gid: int) -> str:
        return self._lookup(self._groups, gid)

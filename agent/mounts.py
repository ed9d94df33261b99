"""Mount table: mount id -> mount point, root, source, fs type.

Seeded from /proc/self/mountinfo at start and refreshed on mount/umount
events (and on a miss, at most once per second), so paths and
``*.file.filesystem`` stay right as mounts come and go.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_MISS_REFRESH_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Mount:
    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: bytes          # path of the mount's root inside its filesystem
    mount_point: bytes   # where it is mounted, in the agent's namespace
    fs_type: str
    source: bytes

    @property
    def dev(self) -> int:
        """The kernel's internal dev_t encoding (super_block.s_dev)."""
        return (self.major << 20) | self.minor


def _unescape(field: bytes) -> bytes:
    """mountinfo octal-escapes space, tab, newline and backslash."""
    if b"\\" not in field:
        return field
    out = bytearray()
    i = 0
    while i < len(field):
        digits = field[i + 1 : i + 4]
        if field[i] == 0x5C and len(digits) == 3 and digits.isdigit():
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return bytes(out)


def parse_mountinfo(data: bytes) -> dict[int, Mount]:
    mounts: dict[int, Mount] = {}
    for line in data.splitlines():
        left, sep, right = line.partition(b" - ")
        if not sep:
            continue
        f = left.split(b" ")
        r = right.split(b" ")
        if len(f) < 5 or len(r) < 2:
            continue
        major, minor = (int(x) for x in f[2].split(b":"))
        mounts[int(f[0])] = Mount(
            mount_id=int(f[0]),
            parent_id=int(f[1]),
            major=major,
            minor=minor,
            root=_unescape(f[3]),
            mount_point=_unescape(f[4]),
            fs_type=r[0].decode("utf-8", "replace"),
            source=_unescape(r[1]),
        )
    return mounts


class MountTable:
    def __init__(self, mountinfo: Path = Path("/proc/self/mountinfo")) -> None:
        self._path = mountinfo
        self._mounts: dict[int, Mount] = {}
        self._last_refresh = 0
        self.refreshes = 0
        self.refresh()

    def refresh(self) -> None:
        try:
            self._mounts = parse_mountinfo(self._path.read_bytes())
        except OSError as exc:
            log.warning("cannot read %s: %s; mount data may be stale", self._path, exc)
        self._last_refresh = time.monotonic_ns()
        self.refreshes += 1

    def get(self, mount_id: int) -> Mount | None:
        m = self._mounts.get(mount_id)
        if m is None and time.monotonic_ns() - self._last_refresh > _MISS_REFRESH_NS:
            self.refresh()
            m = self._mounts.get(mount_id)
        return m

    def all(self) -> list[Mount]:
        return list(self._mounts.values())

    def find_by_point(self, mount_point: bytes) -> Mount | None:
        """The mount currently on top at ``mount_point``."""
        best: Mount | None = None
        for m in self._mounts.values():
            if m.mount_point == mount_point and (best is None or m.mount_id > best.mount_id):
                best = m
        return best

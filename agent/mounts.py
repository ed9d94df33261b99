"""Mount table: mount id -> mount point, root, source, fs type.

Seeded from /proc/self/mountinfo at start and refreshed on mount/umount
events (the decoder calls :meth:`MountTable.refresh` when it decodes one, in
ring-buffer order) and on a miss (rate-limited), so paths and
``*.file.filesystem`` stay right as mounts come and go. Mounts that a refresh
no longer lists stay findable by id for a while (events already in the ring
buffer may still name them).

:meth:`MountTable.locate` places a path the kernel could only walk up to its
filesystem's root (several mounts show that superblock: bind mounts, the same
filesystem mounted twice) on one mount; see docs/kernel-precision.md.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_MISS_REFRESH_NS = 1_000_000_000
_DEV_MISS_REFRESH_NS = 100_000_000   # a filesystem not in the table yet: mounted since the last refresh
_REMOVED_KEEP = 256                  # unmounted mounts still resolvable by id


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


def _under(path: bytes, prefix: bytes) -> bytes | None:
    """The part of ``path`` below directory ``prefix`` ("" when equal), or None."""
    if prefix == b"/":
        return path
    if path == prefix:
        return b""
    if path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] == b"/":
        return path[len(prefix) :]
    return None


def _join(mount_point: bytes, rest: bytes) -> bytes:
    if not rest or rest == b"/":
        return mount_point
    return mount_point.rstrip(b"/") + rest


@dataclass(frozen=True, slots=True)
class Placement:
    """A superblock-relative path placed on a mount."""

    mount: Mount
    path: bytes          # absolute, in the agent's mount namespace
    ambiguous: bool      # several mounts could show it; the caller's string chose


class MountTable:
    def __init__(self, mountinfo: Path = Path("/proc/self/mountinfo")) -> None:
        self._path = mountinfo
        self._mounts: dict[int, Mount] = {}
        self._removed: OrderedDict[int, Mount] = OrderedDict()
        self._last_refresh = 0
        self.refreshes = 0
        self.refresh()

    def refresh(self) -> None:
        try:
            mounts = parse_mountinfo(self._path.read_bytes())
        except OSError as exc:
            log.warning("cannot read %s: %s; mount data may be stale", self._path, exc)
        else:
            for mount_id, m in self._mounts.items():
                if mounts.get(mount_id) != m:
                    self._removed[mount_id] = m
                    self._removed.move_to_end(mount_id)
            while len(self._removed) > _REMOVED_KEEP:
                self._removed.popitem(last=False)
            self._mounts = mounts
        self._last_refresh = time.monotonic_ns()
        self.refreshes += 1

    def _refresh_if_older(self, ns: int) -> bool:
        if time.monotonic_ns() - self._last_refresh > ns:
            self.refresh()
            return True
        return False

    def get(self, mount_id: int) -> Mount | None:
        m = self._mounts.get(mount_id)
        if m is None and self._refresh_if_older(_MISS_REFRESH_NS):
            m = self._mounts.get(mount_id)
        return m if m is not None else self._removed.get(mount_id)

    def all(self) -> list[Mount]:
        return list(self._mounts.values())

    def top_at(self, mount_point: bytes) -> Mount | None:
        """The mount on top at ``mount_point``: stacked mounts have the one
        below as parent, so the top one is no other's parent there."""
        here = [m for m in self._mounts.values() if m.mount_point == mount_point]
        parents = {m.parent_id for m in here}
        top = [m for m in here if m.mount_id not in parents]
        return max(top or here, key=lambda m: m.mount_id, default=None)

    def remember(self, mount: Mount) -> None:
        """A mount the kernel reported that /proc no longer lists (made and
        removed before a refresh): kept among the removed ones, so that its
        umount still finds it."""
        if mount.mount_id not in self._mounts:
            self._removed[mount.mount_id] = mount
            self._removed.move_to_end(mount.mount_id)

    def removed_at(self, mount_point: bytes) -> Mount | None:
        """The most recently removed mount that was at ``mount_point``."""
        for m in reversed(self._removed.values()):
            if m.mount_point == mount_point:
                return m
        return None

    def containing(self, path: bytes) -> Mount | None:
        """The mount a lookup of absolute ``path`` ends in, by mount points
        alone (the longest mount point that is a prefix; the top one there)."""
        best: bytes | None = None
        for m in self._mounts.values():
            if _under(path, m.mount_point) is not None and (best is None or len(m.mount_point) > len(best)):
                best = m.mount_point
        return self.top_at(best) if best is not None else None

    def locate(self, dev: int, sb_path: bytes, hint: bytes | None) -> Placement | None:
        """Place ``sb_path`` (from the root of the filesystem on ``dev``, the
        kernel's s_dev encoding) on a mount. The candidates are the mounts of
        that filesystem whose root contains it; with several, the one the
        caller's resolved string ``hint`` points into, else the one with the
        shortest mount point."""
        cands = self._candidates(dev, sb_path)
        if not cands and self._refresh_if_older(_DEV_MISS_REFRESH_NS):
            cands = self._candidates(dev, sb_path)
        if not cands:
            return None
        placed = [(m, _join(m.mount_point, _under(sb_path, m.root) or b"")) for m in cands]
        if len(placed) == 1:
            return Placement(placed[0][0], placed[0][1], False)
        if hint is not None:
            exact = [mp for mp in placed if mp[1] == hint]
            if exact:
                m, path = max(exact, key=lambda mp: mp[0].mount_id)
                return Placement(m, path, True)
            inside = [mp for mp in placed if _under(hint, mp[0].mount_point) is not None]
            if inside:
                m, path = max(inside, key=lambda mp: (len(mp[0].mount_point), mp[0].mount_id))
                return Placement(m, path, True)
        m, path = min(placed, key=lambda mp: (len(mp[0].mount_point), mp[0].mount_id))
        return Placement(m, path, True)

    def _candidates(self, dev: int, sb_path: bytes) -> list[Mount]:
        return [m for m in self._mounts.values() if m.dev == dev and _under(sb_path, m.root) is not None]

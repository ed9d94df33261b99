"""`rsagent run --watch-policy`: reload when a policy file changes.

inotify (inotify(7), through libc: the standard library has no binding) on
the directory of each policy file and on each policy directory, never
following a symbolic link (IN_DONT_FOLLOW): an editor's save (write in
place, or a new file renamed over the old) and a file added to or removed
from a policy directory are all seen. A policy file that is a symbolic link
gets its target's directory watched too. Before arming, every watched
directory is checked like the files the agent loads (agent/trust.py: only
root may be able to change it), and each reload checks the policy files
again, so a watch never makes the agent trust what a non-root user could
swap.

Changes are debounced: the reload runs once nothing changed for
``quiet`` seconds (an editor writes a file in several steps), at most
``max_delay`` seconds after the first change.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import select
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from .trust import check

log = logging.getLogger(__name__)

# inotify(7) / <sys/inotify.h>: the user-space ABI
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_CLOEXEC = os.O_CLOEXEC
IN_NONBLOCK = os.O_NONBLOCK

WATCH_MASK = (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB
              | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)
_EVENT = struct.Struct("iIII")   # struct inotify_event: wd, mask, cookie, len (then the name)


class WatchError(OSError):
    """The policy files cannot be watched."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def watched_dirs(policies: list[Path]) -> dict[Path, set[str] | None]:
    """Directory -> the names in it that are policy files (None: any policy
    file, a policy directory)."""
    dirs: dict[Path, set[str] | None] = {}

    def add(directory: Path, name: str | None) -> None:
        if directory in dirs and dirs[directory] is None:
            return
        if name is None:
            dirs[directory] = None
        else:
            dirs.setdefault(directory, set()).add(name)  # type: ignore[union-attr]

    for p in policies:
        p = Path(os.path.abspath(p))
        if p.is_dir():
            add(p, None)
            continue
        add(p.parent, p.name)
        real = Path(os.path.realpath(p))
        if real != p:
            add(real.parent, real.name)
    return dirs


class PolicyWatch:
    """Calls ``on_change(why)`` (from its own thread) once a watched policy
    file changed and things are quiet again; see the module docstring."""

    def __init__(self, policies: list[Path], on_change: Callable[[str], None], *, insecure: bool = False,
                 quiet: float = 0.3, max_delay: float = 2.0) -> None:
        from codegen.policy import POLICY_EXTENSIONS

        self.on_change = on_change
        self.quiet = quiet
        self.max_delay = max_delay
        self.dirs = watched_dirs(policies)
        self._extensions = tuple(POLICY_EXTENSIONS)
        check(((d, "watched policy directory") for d in self.dirs), insecure)
        self._libc = _libc()
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise WatchError(code, f"--watch-policy: inotify_init1: {os.strerror(code)} (raise "
                                   "fs.inotify.max_user_instances?)")
        self._fd = fd
        self._wds: dict[int, Path] = {}
        try:
            for d in self.dirs:
                wd = self._libc.inotify_add_watch(fd, os.fsencode(d), WATCH_MASK)
                if wd < 0:
                    code = ctypes.get_errno()
                    hint = " (raise fs.inotify.max_user_watches)" if code == errno.ENOSPC else ""
                    raise WatchError(code, f"--watch-policy: cannot watch {d}: {os.strerror(code)}{hint}")
                self._wds[wd] = d
        except BaseException:
            os.close(fd)
            raise
        self.changes = 0          # reloads asked for
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="policy-watch", daemon=True)
        log.info("--watch-policy: watching %s", ", ".join(str(d) for d in self.dirs))

    def _relevant(self, directory: Path, name: str, mask: int) -> bool:
        if mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF):
            return True
        if not name:
            return False
        names = self.dirs.get(directory)
        if names is None:
            return name.endswith(self._extensions) and not name.startswith(".")
        return name in names

    def _read(self) -> list[str]:
        """What changed since the last read (file names), draining the fd."""
        changed: list[str] = []
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return changed
            off = 0
            while off + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, off)
                raw = data[off + _EVENT.size: off + _EVENT.size + length]
                off += _EVENT.size + length
                name = os.fsdecode(raw.rstrip(b"\0"))
                directory = self._wds.get(wd)
                if mask & IN_Q_OVERFLOW:
                    changed.append("(inotify queue overflow)")
                    continue
                if directory is None:
                    continue
                if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED) and not name:
                    if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                        log.warning("--watch-policy: %s was removed or moved: it is no longer watched "
                                    "(restart the agent to watch it again)", directory)
                        changed.append(str(directory))
                    continue
                if self._relevant(directory, name, mask):
                    changed.append(str(directory / name))

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        first: float | None = None
        last = 0.0
        what: list[str] = []
        while not self._stop.is_set():
            poller.poll(100)
            changed = self._read()
            now = time.monotonic()
            if changed:
                what += [c for c in changed if c not in what]
                last = now
                if first is None:
                    first = now
            if first is not None and (now - last >= self.quiet or now - first >= self.max_delay):
                self.changes += 1
                why = f"policy change ({', '.join(what)})"
                first, what = None, []
                try:
                    self.on_change(why)
                except (OSError, RuntimeError, ValueError) as exc:
                    log.error("--watch-policy: could not start the reload: %s", exc)

    def __enter__(self) -> PolicyWatch:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        os.close(self._fd)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

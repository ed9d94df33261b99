"""Line sinks: ``-``/``stdout`` and ``jsonl:PATH``, one JSON document per line.

Writes go through ``os.write`` on the file descriptor, looping over short
writes; a record cut by a full disk is finished, not repeated, on the retry,
so every line stays whole. ``jsonl:`` files are opened safely (see
agent.safefile) and reopened when the path changes (log rotation).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from pathlib import Path

from ..safefile import open_append
from .record import Record
from .worker import DeliveryError

log = logging.getLogger("agent.sinks")

# The reader is gone for good: EPIPE (closed pipe), EBADF (closed stdout).
_PERMANENT = (errno.EPIPE, errno.EBADF)


class LineTransport:
    batch_records = 1024
    batch_bytes = 1 << 20

    def __init__(self, fd: int, *, path: Path | None = None, owns_fd: bool = False) -> None:
        self._fd = fd
        self._path = path
        self._owns_fd = owns_fd
        self._carry: tuple[Record, int] | None = None   # a record cut short, and how much of it was written
        self._next_check = time.monotonic() + 1.0
        self._reopen_failed = False

    def send(self, batch: list[Record]) -> None:
        if self._path is not None and time.monotonic() >= self._next_check:
            self._reopen_if_rotated()
        skip = self._carry[1] if self._carry is not None and self._carry[0] is batch[0] else 0
        self._carry = None
        blob = b"".join(r.data + b"\n" for r in batch)
        view = memoryview(blob)[skip:]
        written = skip
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
                written += n
        except OSError as exc:
            delivered, offset = _split(batch, written)
            if delivered < len(batch) and offset:
                self._carry = (batch[delivered], offset)
            raise DeliveryError(f"write failed: {exc.strerror}", delivered=delivered,
                                permanent=exc.errno in _PERMANENT) from None
        finally:
            view.release()

    def _reopen_if_rotated(self) -> None:
        assert self._path is not None
        self._next_check = time.monotonic() + 1.0
        try:
            current = os.stat(self._path, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        mine = os.fstat(self._fd)
        if not stat.S_ISREG(mine.st_mode):
            return
        if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
            return
        try:
            fd = open_append(self._path)
        except OSError as exc:
            if not self._reopen_failed:
                log.warning("sink jsonl:%s: the file was moved or removed and cannot be created again (%s); "
                            "still writing to the old file", self._path, exc)
            self._reopen_failed = True
            return
        self._reopen_failed = False
        log.info("sink jsonl:%s: the file was moved or removed (log rotation); writing to a new one", self._path)
        os.close(self._fd)
        self._fd = fd

    def close(self) -> None:
        if self._owns_fd:
            os.close(self._fd)


def _split(batch: list[Record], written: int) -> tuple[int, int]:
    """(whole records within ``written`` bytes, bytes written of the next)."""
    for i, rec in enumerate(batch):
        size = len(rec.data) + 1
        if written < size:
            return i, written
        written -= size
    return len(batch), 0

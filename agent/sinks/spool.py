"""A bounded on-disk queue for a network sink while its destination is down.

The spool is a directory (mode 0700, owned by the agent) of segment files
(mode 0600) named by a sequence number, ``0000000000000001.spool`` ...; each
holds records as ``data length (u32, big endian) | severity (u8) |
timestamp (u64) | name length (u8) | name | data``.
Records are appended to the newest segment and read back from the oldest,
in order; a segment is deleted once every record in it was delivered. A
spool left by a previous run is replayed first, so alerts survive a restart
while the destination is down (at-least-once: a record delivered just
before a crash may be sent again).

The delivered part of the oldest segment is recorded in ``head`` so a
restart does not send it again. The directory is locked (``flock`` on ``lock``) so two agents never share
one. Its total size is bounded: a record that does not fit is refused and
the caller counts it.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import stat
import struct
from pathlib import Path

from .record import Record
from .spec import SinkError

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">IBQB")
_SEGMENT = re.compile(r"^(\d{16})\.spool$")
SEGMENT_BYTES = 4 << 20


def secure_directory(path: Path) -> None:
    """Create ``path`` (and missing parents) 0700, or check an existing one
    is a real directory owned by us that nobody else can write into."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
    except OSError as exc:
        raise SinkError(f"spool directory {path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise SinkError(f"spool directory {path}: not a directory (a symlink is refused)")
    if st.st_uid != os.geteuid():
        raise SinkError(f"spool directory {path}: owned by uid {st.st_uid}, not by the agent (uid {os.geteuid()})")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700, follow_symlinks=False)


class Spool:
    def __init__(self, directory: Path, max_bytes: int, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        secure_directory(directory)
        self._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SinkError(f"spool directory {directory}: in use by another rsagent "
                            f"(give each agent its own spool=DIR)") from None
        self._segments: list[int] = sorted(int(m.group(1)) for p in directory.iterdir()
                                           if (m := _SEGMENT.match(p.name)))
        self._sizes = {seq: self._path(seq).stat().st_size for seq in self._segments}
        self._write_fd: int | None = None
        self._peeked: list[tuple[int, int]] = []  # (offset after record, record size) of the last peek
        # How far the oldest segment was delivered, kept across restarts.
        self._head_fd = os.open(directory / "head", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self._read_offset = 0
        self.records = self._count_records()
        if self.records:
            log.warning("spool %s: %d record(s) left by a previous run; replaying them first", directory, self.records)

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:016d}.spool"

    def _count_records(self) -> int:
        head = os.pread(self._head_fd, 64, 0).split()
        head_seq, head_off = (int(head[0]), int(head[1])) if len(head) == 2 and all(x.isdigit() for x in head) else (0, 0)
        n = 0
        for seq in self._segments:
            data = self._path(seq).read_bytes()
            off = 0
            while off + _HEADER.size <= len(data):
                length, _, _, nlen = _HEADER.unpack_from(data, off)
                if off + _HEADER.size + nlen + length > len(data):
                    break
                off += _HEADER.size + nlen + length
                n += 1
                if seq == head_seq == self._segments[0] and off == head_off:
                    self._read_offset = off   # delivered before the restart
                    n = 0
            if off != len(data):
                log.warning("spool %s: %d trailing byte(s) of an incomplete record dropped",
                            self._path(seq), len(data) - off)
                os.truncate(self._path(seq), off)
                self._sizes[seq] = off
        return n

    @property
    def bytes(self) -> int:
        return sum(self._sizes.values()) - self._read_offset

    def pending(self) -> bool:
        return self.records > 0

    def append(self, records: list[Record]) -> int:
        """Write records at the tail; returns how many fit (the rest did not:
        the spool is full or the disk refused them)."""
        done = 0
        for rec in records:
            name = rec.name.encode("ascii", "replace")[:255]
            size = _HEADER.size + len(name) + len(rec.data)
            if self.bytes + size > self.max_bytes:
                break
            if self._write_fd is None or self._sizes[self._segments[-1]] >= self.segment_bytes:
                self._rotate()
            assert self._write_fd is not None
            blob = _HEADER.pack(len(rec.data), rec.severity, rec.timestamp, len(name)) + name + rec.data
            seq = self._segments[-1]
            try:
                written = os.write(self._write_fd, blob)
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
                    raise
                written = 0
            if written != len(blob):
                # A short write (disk full): cut the partial record off.
                os.ftruncate(self._write_fd, self._sizes[seq])
                break
            self._sizes[seq] += written
            self.records += 1
            done += 1
        return done

    def _rotate(self) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
        seq = (self._segments[-1] + 1) if self._segments else 1
        self._write_fd = os.open(self._path(seq), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
                                 | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self._segments.append(seq)
        self._sizes[seq] = 0

    def peek(self, max_records: int, max_bytes: int) -> list[Record]:
        """The oldest records, without removing them (see commit)."""
        out: list[Record] = []
        self._peeked = []
        if not self._segments:
            return out
        seq = self._segments[0]
        with open(self._path(seq), "rb") as f:
            f.seek(self._read_offset)
            data = f.read(max(max_bytes, 1 << 16))
        off = 0
        total = 0
        while len(out) < max_records and off + _HEADER.size <= len(data):
            length, severity, timestamp, nlen = _HEADER.unpack_from(data, off)
            end = off + _HEADER.size + nlen + length
            if end > len(data):
                if not out:  # one record larger than what was read: read it whole
                    with open(self._path(seq), "rb") as f:
                        f.seek(self._read_offset)
                        data = f.read(end)
                    continue
                break
            if out and total + length > max_bytes:
                break
            start = off + _HEADER.size + nlen
            out.append(Record(bytes(data[start:end]), severity, timestamp,
                              data[off + _HEADER.size:start].decode("ascii", "replace")))
            self._peeked.append((end, length))
            total += length
            off = end
        if not out and seq != self._segments[-1]:
            # An empty (fully consumed) older segment: drop it and look further.
            self._drop_head()
            return self.peek(max_records, max_bytes)
        return out

    def commit(self, n: int) -> None:
        """The first ``n`` records of the last peek were delivered."""
        if n <= 0:
            return
        end, _ = self._peeked[n - 1]
        self._peeked = self._peeked[n:]
        self._peeked = [(e - end, s) for e, s in self._peeked]
        self._read_offset += end
        self.records -= n
        seq = self._segments[0]
        if self._read_offset >= self._sizes[seq]:
            self._drop_head()
        else:
            os.pwrite(self._head_fd, f"{seq} {self._read_offset}".ljust(40).encode(), 0)

    def _drop_head(self) -> None:
        seq = self._segments.pop(0)
        if not self._segments and self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        self._path(seq).unlink(missing_ok=True)
        del self._sizes[seq]
        self._read_offset = 0
        os.pwrite(self._head_fd, b"0 0".ljust(40), 0)

    def close(self) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        os.close(self._head_fd)
        os.close(self._lock_fd)

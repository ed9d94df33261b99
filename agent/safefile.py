"""Files the agent (root) writes in places other users may reach: never
through a symlink, never into a file someone else controls.

``open_append``: a sink file, created 0600 with O_NOFOLLOW; an existing
regular file must be ours (our uid, one link) and its directory not
writable by others unless sticky (then O_NOFOLLOW and the owner check
close the usual /tmp races). FIFOs and character devices are accepted
(``jsonl:/dev/null``, a pipe to a shipper).

``open_truncate``: a capture file (`rsagent record`), the same checks as
``open_append`` but for a regular file only, emptied first.

``write_replace``: the --ready-file, written to a new file (O_CREAT|O_EXCL|
O_NOFOLLOW) beside it and renamed over it: rename replaces a symlink itself
instead of following it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
from pathlib import Path


class UnsafePath(OSError):
    """A path the agent refuses to write through."""


def _check_directory(directory: Path) -> None:
    st = directory.stat()
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise UnsafePath(f"{directory} is writable by every user and not sticky")
    if st.st_uid not in (0, os.geteuid()):
        raise UnsafePath(f"{directory} is owned by uid {st.st_uid}, who could swap the file")


def open_append(path: Path) -> int:
    """A file descriptor appending to ``path`` (see the module docstring)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_directory(path.parent)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a reader (ENXIO instead).
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(f"{path} is a symlink; give the real path") from None
        if exc.errno == errno.ENXIO:
            raise UnsafePath(f"{path} is a FIFO nobody reads yet; start its reader first") from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            if st.st_uid != os.geteuid():
                raise UnsafePath(f"{path} is owned by uid {st.st_uid}; refusing to write into a file another user controls")
            if st.st_nlink > 1:
                raise UnsafePath(f"{path} has {st.st_nlink} hard links; refusing to write through one")
        elif not (stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode)):
            raise UnsafePath(f"{path} is not a regular file, a FIFO or a character device")
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_truncate(path: Path) -> int:
    """A file descriptor writing ``path`` from its start (created 0600, never
    through a symlink, an existing file must be a regular file of ours with
    one link)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_directory(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(f"{path} is a symlink; give the real path") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(f"{path} is not a regular file")
        if st.st_uid != os.geteuid():
            raise UnsafePath(f"{path} is owned by uid {st.st_uid}; refusing to write into a file another user controls")
        if st.st_nlink > 1:
            raise UnsafePath(f"{path} has {st.st_nlink} hard links; refusing to write through one")
        os.ftruncate(fd, 0)
        os.fchmod(fd, 0o600)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_replace(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` atomically, never through a symlink."""
    directory = path.parent
    _check_directory(directory)
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    try:
        os.rename(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise

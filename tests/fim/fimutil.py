"""Helpers for the file-integrity tests: raw syscalls through libc's
``syscall()`` (every variant, also those Python has no wrapper for), and what
the documents should say about a file (from os.stat and mountinfo)."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# x86_64 syscall numbers
NR = {
    "rename": 82, "mkdir": 83, "rmdir": 84, "link": 86, "unlink": 87,
    "chmod": 90, "fchmod": 91, "chown": 92, "fchown": 93, "lchown": 94,
    "utime": 132, "mount": 165, "umount2": 166,
    "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190,
    "removexattr": 197, "lremovexattr": 198, "fremovexattr": 199,
    "utimes": 235, "mkdirat": 258, "fchownat": 260, "futimesat": 261,
    "unlinkat": 263, "renameat": 264, "linkat": 265, "fchmodat": 268,
    "utimensat": 280, "renameat2": 316, "fchmodat2": 452,
    "setxattrat": 463, "removexattrat": 466,
}

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_EMPTY_PATH = 0x1000
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
MS_BIND = 4096


def _arg(a: Any) -> Any:
    if a is None:
        return ctypes.c_void_p(0)
    if isinstance(a, (str, os.PathLike)):
        return ctypes.c_char_p(os.fsencode(a))
    if isinstance(a, bytes):
        return ctypes.c_char_p(a)
    if isinstance(a, int):
        return ctypes.c_long(a)
    return a  # ctypes objects (pointers to structs)


def syscall(name: str, *args: Any) -> int:
    """The raw syscall: its return value, or -errno."""
    rc = _libc.syscall(ctypes.c_long(NR[name]), *(_arg(a) for a in args))
    return -ctypes.get_errno() if rc == -1 else rc


def ok(name: str, *args: Any) -> int:
    rc = syscall(name, *args)
    assert rc >= 0, f"{name}{args}: {errno.errorcode.get(-rc, rc)}"
    return rc


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class Utimbuf(ctypes.Structure):
    _fields_ = [("actime", ctypes.c_long), ("modtime", ctypes.c_long)]


class XattrArgs(ctypes.Structure):
    _fields_ = [("value", ctypes.c_uint64), ("size", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


def timevals(atime: int, mtime: int) -> Any:
    arr = (Timeval * 2)(Timeval(atime, 0), Timeval(mtime, 0))
    return ctypes.cast(arr, ctypes.c_void_p), arr


def timespecs(atime: int, mtime: int) -> Any:
    arr = (Timespec * 2)(Timespec(atime, 0), Timespec(mtime, 0))
    return ctypes.cast(arr, ctypes.c_void_p), arr


def xattr_args(value: bytes, flags: int = 0) -> Any:
    buf = ctypes.create_string_buffer(value, len(value))
    xa = XattrArgs(ctypes.addressof(buf), len(value), flags)
    return ctypes.pointer(xa), (xa, buf)


# -- expectations ------------------------------------------------------------

def mountinfo() -> list[tuple[int, int, bytes, bytes]]:
    """(mount id, parent id, root, mount point) from /proc/self/mountinfo."""
    out = []
    for line in Path("/proc/self/mountinfo").read_bytes().splitlines():
        f = line.split(b" ")
        out.append((int(f[0]), int(f[1]), _unescape(f[3]), _unescape(f[4])))
    return out


def _unescape(b: bytes) -> bytes:
    return b.replace(b"\\040", b" ").replace(b"\\011", b"\t").replace(b"\\012", b"\n").replace(b"\\134", b"\\")


def mount_id_of(path: str | bytes | os.PathLike[str]) -> int:
    """The mount a canonical path is in: longest mount point prefix, top of its stack."""
    p = os.fsencode(path)
    best: list[tuple[int, int, bytes, bytes]] = []
    best_len = -1
    for m in mountinfo():
        mp = m[3]
        if p == mp or mp == b"/" or p.startswith(mp + b"/"):
            if len(mp) > best_len:
                best, best_len = [m], len(mp)
            elif len(mp) == best_len:
                best.append(m)
    parents = {m[1] for m in best}
    top = [m for m in best if m[0] not in parents] or best
    return max(m[0] for m in top)


def file_of(doc: dict[str, Any]) -> dict[str, Any]:
    return doc[doc["type"]]["file"]


def events(col: Any, event_type: str, path: str | bytes | os.PathLike[str] | None = None,
           pid: int | None = None) -> list[dict[str, Any]]:
    """Documents of one type (whose file.path is ``path``) caused by ``pid``
    (default: this process)."""
    pid = os.getpid() if pid is None else pid
    want = None if path is None else _text(os.fsencode(path))
    out = []
    for d in col.of_type(event_type):
        if d["process"]["pid"] != pid:
            continue
        if want is not None and d[event_type].get("file", {}).get("path") != want:
            continue
        out.append(d)
    return out


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def only(col: Any, event_type: str, path: str | bytes | os.PathLike[str] | None = None,
         pid: int | None = None) -> dict[str, Any]:
    found = events(col, event_type, path, pid)
    seen = [(d["type"], d[d["type"]].get("file", {}).get("path")) for d in col.docs
            if d["type"] not in ("open", "exec", "fork", "exit")]
    assert len(found) == 1, f"{len(found)} {event_type} events for {path!r}; seen: {seen}"
    return found[0]


def assert_file(file: dict[str, Any], path: str | bytes | os.PathLike[str], st: os.stat_result | None,
                *, source: str = "kernel") -> None:
    """path, name, inode, mount id (and mode/uid/gid from ``st``) of a file document."""
    raw = os.fsencode(path)
    assert file["path"] == _text(raw), file
    assert file["name"] == _text(os.path.basename(raw))
    assert file["mount_id"] == mount_id_of(raw), (file["mount_id"], mountinfo())
    assert file["path_source"] == source, file
    if st is not None:
        assert file["inode"] == st.st_ino
        assert file["mode"] == st.st_mode
        assert file["uid"] == st.st_uid
        assert file["gid"] == st.st_gid
    if raw != _text(raw).encode():
        import base64
        assert base64.b64decode(file["path_raw_b64"]) == raw


def pack_utimbuf(atime: int, mtime: int) -> Any:
    buf = Utimbuf(atime, mtime)
    return ctypes.pointer(buf), buf


__all__ = [
    "AT_EMPTY_PATH",
    "AT_FDCWD",
    "AT_REMOVEDIR",
    "AT_SYMLINK_NOFOLLOW",
    "MS_BIND",
    "NR",
    "RENAME_EXCHANGE",
    "RENAME_NOREPLACE",
    "assert_file",
    "events",
    "file_of",
    "mount_id_of",
    "mountinfo",
    "ok",
    "only",
    "pack_utimbuf",
    "syscall",
    "timespecs",
    "timevals",
    "xattr_args",
]

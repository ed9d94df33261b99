"""Paths as the kernel hands them over: bytes, possibly not UTF-8.

Event documents are JSON, so a path is written as text with each byte that
is not valid UTF-8 escaped as ``\\xNN``; when that happens the raw bytes ride
along base64-encoded under ``path_raw_b64`` so nothing is lost.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable


def decode_path(raw: bytes) -> tuple[str, str | None]:
    """(text, raw_b64 or None). raw_b64 is set only when raw is not UTF-8."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="backslashreplace"), base64.b64encode(raw).decode("ascii")


def basename(raw: bytes) -> bytes:
    if raw == b"/":
        return b"/"
    return raw.rstrip(b"/").rsplit(b"/", 1)[-1]


def join_lexically(base: bytes, path: bytes) -> bytes:
    """Join ``path`` to the absolute directory ``base`` and normalize it the way
    a lookup walks it, without touching the filesystem: empty components and
    ``.`` are dropped, ``..`` goes up one level and never above ``/``.

    Used only for calls that failed (no kernel object to walk) or that this
    kernel resolves from the caller's string; symlinks in ``path`` are not
    followed, as the lookup that failed may never have reached them.
    """
    if not path.startswith(b"/"):
        path = base.rstrip(b"/") + b"/" + path
    parts: list[bytes] = []
    for part in path.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return b"/" + b"/".join(parts)


MAXSYMLINKS = 40  # the kernel's limit on symlinks followed in one lookup


def resolve_user_path(root: bytes, base: bytes, path: bytes, *, follow_last: bool,
                      lstat: Callable[[bytes], os.stat_result] = os.lstat,
                      readlink: Callable[[bytes], bytes] = os.readlink) -> bytes:
    """Resolve a caller's path string the way the kernel's lookup would have,
    from user space: join it to ``base`` (the kernel-walked start directory:
    dirfd, cwd, or the caller's root for an absolute path), drop ``.`` and
    ``//``, follow symlinks (absolute ones from ``root``, the caller's root as
    seen from the agent), and apply ``..`` after them, never above ``root``.
    The last component is followed only when ``follow_last`` (chmod follows,
    lchown and unlink do not). Components that do not exist are kept as
    written.

    This reads the filesystem *now*, not when the call ran: a symlink
    created, changed or removed in between (a race the caller controls) gives
    a different answer. Only used where no kernel object named the file.
    """
    root_parts = _split(root)
    parts = root_parts + _split(path) if path.startswith(b"/") else _split(base) + _split(path)
    if parts[: len(root_parts)] != root_parts:
        # A cwd left outside a chroot: `..` is not clamped (nor by the kernel).
        root_parts = []
    done: list[bytes] = list(root_parts)
    todo = parts[len(root_parts):]
    todo.reverse()
    links = 0
    while todo:
        part = todo.pop()
        if part == b".":
            continue
        if part == b"..":
            if len(done) > len(root_parts):
                done.pop()
            continue
        candidate = done + [part]
        last = not todo
        if last and not follow_last:
            done = candidate
            continue
        full = b"/" + b"/".join(candidate)
        try:
            is_link = stat.S_ISLNK(lstat(full).st_mode)
        except OSError:
            is_link = False
        if not is_link or links >= MAXSYMLINKS:
            done = candidate
            continue
        links += 1
        try:
            target = readlink(full)
        except OSError:
            done = candidate
            continue
        more = _split(target)
        if target.startswith(b"/"):
            done = list(root_parts)
        todo.extend(reversed(more))
    return b"/" + b"/".join(done)


def _split(path: bytes) -> list[bytes]:
    return [p for p in path.split(b"/") if p]

"""Paths as the kernel hands them over: bytes, possibly not UTF-8.

Event documents are JSON, so a path is written as text with each byte that
is not valid UTF-8 escaped as ``\\xNN``; when that happens the raw bytes ride
along base64-encoded under ``path_raw_b64`` so nothing is lost.
"""

from __future__ import annotations

import base64


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

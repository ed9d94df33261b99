"""Building the parts of event documents (docs/interfaces.md) shared by every
event type: files here; processes and credentials in process_docs.py."""

from __future__ import annotations

from typing import Any

from ..paths import basename, decode_path
from ..users import UserNames
from .layout import layout

# struct rs_file.flags bits, from events.h (never copied by hand)
RS_FILE_PRESENT = layout().const("RS_FILE_PRESENT")
RS_FILE_PATH_TRUNCATED = layout().const("RS_FILE_PATH_TRUNCATED")
RS_FILE_UPPER_LAYER = layout().const("RS_FILE_UPPER_LAYER")
RS_FILE_DISCONNECTED = layout().const("RS_FILE_DISCONNECTED")
MEMFD_PREFIX = b"/memfd:"   # mm/memfd.c names its files "memfd:" + the caller's name


def path_fields(raw: bytes, doc: dict[str, Any]) -> dict[str, Any]:
    """Set ``path``, ``name`` (and ``path_raw_b64`` when not UTF-8) on doc."""
    text, raw_b64 = decode_path(raw)
    doc["path"] = text
    doc["name"] = decode_path(basename(raw))[0] if raw else ""
    if raw_b64 is not None:
        doc["path_raw_b64"] = raw_b64
    return doc


def file_doc(
    path: bytes,
    *,
    inode: int,
    mount_id: int,
    mode: int,
    uid: int,
    gid: int,
    fs_type: str,
    flags: int,
    ctime_ns: int,
    mtime_ns: int,
    users: UserNames,
    nlink: int = 1,
) -> dict[str, Any]:
    """A file's document. A memfd (memfd_create: a file no directory holds,
    on the kernel's internal shmem mount) has no path: its ``path`` and
    ``name`` are the kernel's name ``memfd:NAME`` and ``is_memfd`` is set. A
    file no directory holds any more (unlinked while open or running, a
    memfd, O_TMPFILE) has ``is_deleted``."""
    memfd = bool(flags & RS_FILE_DISCONNECTED) and path.startswith(MEMFD_PREFIX) and path.count(b"/") == 1
    if memfd:
        path = path[1:]
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError:
        doc: dict[str, Any] = path_fields(path, {})
    else:
        # the common case, in one literal: UTF-8 (no path_raw_b64), the name
        # cut from the text ('/' is one byte in UTF-8: the same as basename())
        doc = {"path": text, "name": text if text == "/" else text.rstrip("/").rsplit("/", 1)[-1]}
    doc.update(
        inode=inode,
        mount_id=mount_id,
        mode=mode,
        uid=uid,
        gid=gid,
        user=users.lazy_user(uid),
        group=users.lazy_group(gid),
        filesystem=fs_type,
        in_upper_layer=bool(flags & RS_FILE_UPPER_LAYER),
        change_time=ctime_ns,
        modification_time=mtime_ns,
        is_memfd=memfd,
        is_deleted=bool(flags & RS_FILE_PRESENT) and nlink == 0,
    )
    if flags & RS_FILE_PATH_TRUNCATED:
        doc["path_truncated"] = True
    return doc


__all__ = ["file_doc", "path_fields"]

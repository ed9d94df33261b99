"""The new mount API (fsmount, move_mount, open_tree, open_tree_attr,
mount_setattr) as ``mount`` events with the fields of mount(2)
(ebpf/hooks/mount_api.h says what the kernel side records).

``mount.flags`` is what the call amounts to in mount(2) flags (MS_*), so a
rule written for mount(2) reads the new API alike: fsmount's MOUNT_ATTR_*
become MS_RDONLY, MS_NOSUID...; move_mount is MS_MOVE; open_tree(CLONE) is
MS_BIND (MS_REC with AT_RECURSIVE); mount_setattr is MS_REMOUNT|MS_BIND
with the attributes it sets. The call's own flags argument is kept as
``mount.syscall_flags``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mounts import Mount
from .decode import FileRecord
from .documents import path_fields
from .layout import layout

if TYPE_CHECKING:
    from .file_events import FileEventResolver, _Request
    from .resolve import Document

_L = layout()
_c = _L.const

# MOUNT_ATTR_* -> MS_* (the bits both have; atime is a 3-bit field in MOUNT_ATTR)
_ATTR_TO_MS = (
    (_c("RS_MOUNT_ATTR_RDONLY"), _c("RS_MS_RDONLY")),
    (_c("RS_MOUNT_ATTR_NOSUID"), _c("RS_MS_NOSUID")),
    (_c("RS_MOUNT_ATTR_NODEV"), _c("RS_MS_NODEV")),
    (_c("RS_MOUNT_ATTR_NOEXEC"), _c("RS_MS_NOEXEC")),
    (_c("RS_MOUNT_ATTR_NODIRATIME"), _c("RS_MS_NODIRATIME")),
)
_ATIME_MASK = _c("RS_MOUNT_ATTR__ATIME")
_ATIME = {_c("RS_MOUNT_ATTR_NOATIME"): _c("RS_MS_NOATIME"), _c("RS_MOUNT_ATTR_STRICTATIME"): _c("RS_MS_STRICTATIME")}
MS_BIND, MS_MOVE, MS_REC, MS_REMOUNT = _c("RS_MS_BIND"), _c("RS_MS_MOVE"), _c("RS_MS_REC"), _c("RS_MS_REMOUNT")
AT_RECURSIVE = _c("RS_AT_RECURSIVE")
FIM_SOURCE_KERNEL = _c("RS_FIM_SOURCE_KERNEL")
FIM_DETACHED = _c("RS_FIM_DETACHED")
FIM_DEST_KERNEL = _c("RS_FIM_DEST_KERNEL")

# The new API's syscalls, by number (events.h's, generated from the kernel headers).
SYSCALLS = {_c(f"RS_NR_{name}"): name for name in ("fsmount", "move_mount", "open_tree", "open_tree_attr",
                                                   "mount_setattr")}


def attr_flags(attrs: int) -> int:
    """MOUNT_ATTR_* bits as MS_* bits."""
    ms = 0
    for attr, bit in _ATTR_TO_MS:
        if attrs & attr:
            ms |= bit
    return ms | _ATIME.get(attrs & _ATIME_MASK, 0)


def ms_flags(syscall: str, e: FileRecord) -> int:
    if syscall == "fsmount":
        return attr_flags(e.flags)
    if syscall == "move_mount":
        return MS_MOVE
    if syscall in ("open_tree", "open_tree_attr"):
        return MS_BIND | (MS_REC if e.flags & AT_RECURSIVE else 0) | attr_flags(e.mode)
    return MS_REMOUNT | MS_BIND | attr_flags(e.mode)    # mount_setattr


def mount_api_body(fr: FileEventResolver, syscall: str, e: FileRecord, req: _Request, req2: _Request) -> Document:
    """The ``mount`` body of one new-API call. The mount itself, when the
    kernel named it (dest: walked from its root, its mount point once
    attached), is the truth; otherwise the caller's strings, and the
    agent's mount table (refreshed here, in ring-buffer order)."""
    mounts = fr.res.env.mounts
    ok = e.retval >= 0
    if ok:
        mounts.refresh()
    detached = bool(e.fim_flags & FIM_DETACHED)
    kernel = bool(e.fim_flags & FIM_DEST_KERNEL)
    fs_type = e.fs_type.decode("utf-8", "backslashreplace") or (e.dest.fstype if kernel else "")
    mount_id = e.dest.mount_id if kernel else 0
    point, point_source = b"", "user"
    if kernel and not detached:
        point, point_source = e.dest.path, "kernel"
    elif not detached and req.req:
        point = req.resolve()
        at = mounts.top_at(point) if ok else None
        if at is not None:
            mount_id, fs_type = at.mount_id, fs_type or at.fs_type
    if e.fim_flags & FIM_SOURCE_KERNEL:
        source = e.req_path2     # the filesystem's source as the kernel keeps it (a device, "tmpfs"...)
    else:
        source = req2.resolve() if req2.req or req2.base else b""
    if ok and kernel and not detached and mount_id:
        dev = e.dest.dev
        mounts.remember(Mount(mount_id, 0, dev >> 20, dev & 0xFFFFF, b"", point, fs_type, source))
    return {
        "retval": e.retval,
        "flags": ms_flags(syscall, e),
        "syscall_flags": e.flags,
        "syscall": syscall,
        "detached": detached,
        "mountpoint": path_fields(point, {"path_source": point_source}),
        "source": path_fields(source, {}),
        "fs_type": fs_type,
        "mount_id": mount_id,
    }


__all__ = ["SYSCALLS", "attr_flags", "mount_api_body", "ms_flags"]

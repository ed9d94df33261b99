"""Decoding file activity records (struct rs_file_event): open and the other
file-integrity event types.

Where each path comes from is recorded in the file's ``path_source``
(docs/kernel-precision.md):

``kernel``
    every component from kernel objects: a descriptor's struct file, or the
    dentry a ctime tracepoint named, walked through its mount (its
    filesystem's only mount in the caller's mount namespace, or the only
    candidate the agent's mount table has for it);
``kernel+mount_hint``
    the dentry walked in the kernel up to its filesystem's root; several
    mounts show that filesystem (bind mounts) and the caller's string chose
    among them;
``kernel_parent``
    only the object's directory was named by the kernel (overlayfs removal of
    a lower-layer file, ...): that directory + the last component of the
    caller's string; no inode;
``kernel_fs_root``
    walked in the kernel up to its filesystem's root, but no mount of that
    filesystem is in the agent's mount table (another mount namespace): the
    path is relative to that filesystem's root;
``user``
    no kernel object (a failed call): the caller's string resolved against the
    kernel-walked start directory and root (agent.paths.resolve_user_path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.evaluator.event import Lazy

from ..mounts import Mount
from ..paths import resolve_user_path
from .documents import path_fields

if TYPE_CHECKING:
    from .decode import Decoder, Document


_UNCHANGED_ID = 0xFFFFFFFF
_INODE_KEYS = ("inode", "mode", "uid", "gid", "user", "group", "change_time", "modification_time")
_MODE_BITS = 0o7777
MS_BIND = 4096
MS_MOVE = 8192
O_NOFOLLOW = 0o400000


@dataclass(frozen=True, slots=True)
class _Request:
    """A path string the caller passed, with what the kernel said about where
    its lookup starts."""

    req: bytes           # the string, from user memory
    base: bytes          # the kernel-walked start directory (dirfd, cwd, or root)
    root: bytes          # the caller's root (chroot), "/" otherwise
    follow: bool         # the call follows a symlink in the last component

    def resolve(self) -> bytes:
        return resolve_user_path(self.root, self.base or b"/", self.req, follow_last=self.follow)


class FileEventDecoder:
    """One record -> one document; see the module docstring for paths."""

    def __init__(self, dec: Decoder) -> None:
        self.dec = dec
        c = dec.layout.const
        self.F_PRESENT = c("RS_FILE_PRESENT")
        self.F_SB_RELATIVE = c("RS_FILE_SB_RELATIVE")
        self.FIM_FOLLOW = c("RS_FIM_FOLLOW")
        self.FIM_OBJ_PARENT = c("RS_FIM_OBJ_PARENT")
        self.FIM_DEST_PARENT = c("RS_FIM_DEST_PARENT")
        self.FIM_EXCHANGE = c("RS_FIM_EXCHANGE")
        self.FIM_DEST_KERNEL = c("RS_FIM_DEST_KERNEL")

    def decode(self, data: Any, size: int) -> Document:
        dec = self.dec
        e = dec.ffi.cast("struct rs_file_event *", data)
        name = dec.type_names[e.hdr.type]
        doc = dec.envelope(name, e.hdr, dec.task(e.proc))
        root = dec.bytes_at(data, size, e.root) or b"/"
        follow = bool(e.fim_flags & self.FIM_FOLLOW)
        if name == "open":
            follow = not e.flags & O_NOFOLLOW
        req = _Request(dec.bytes_at(data, size, e.req_path), dec.bytes_at(data, size, e.base.path), root, follow)
        if name in ("mount", "umount"):
            doc[name] = self._mount(name, e, data, size, req)
            return doc
        file = self._file(e.file, data, size, req, parent_only=bool(e.fim_flags & self.FIM_OBJ_PARENT))
        body: Document = {"file": file, "retval": int(e.retval)}
        if e.parent_inodes[0]:
            # Parent directories the kernel filter walked (same mount, nearest
            # first): what a directory discarder is keyed on.
            file["parent_inodes"] = [int(i) for i in e.parent_inodes if i]
        if name == "open":
            body["flags"] = e.flags
            file["destination"] = {"mode": e.mode}
        elif name == "chmod" or name == "mkdir":
            file["destination"] = {"mode": e.mode & _MODE_BITS, "rights": e.mode & _MODE_BITS}
        elif name == "chown":
            file["destination"] = self._owner(e, file)
        elif name in ("setxattr", "removexattr"):
            xname = dec.bytes_at(data, size, e.xattr_name).decode("utf-8", "backslashreplace")
            file["destination"] = {"name": xname, "namespace": xname.split(".", 1)[0] if "." in xname else ""}
            body["flags"] = e.flags
        elif name in ("rename", "link"):
            # Neither rename nor link follows a symlink at the new name.
            req2 = _Request(dec.bytes_at(data, size, e.req_path2), dec.bytes_at(data, size, e.base2.path),
                            root, False)
            file["destination"] = self._file(e.dest, data, size, req2,
                                             parent_only=bool(e.fim_flags & self.FIM_DEST_PARENT))
            body["flags"] = e.flags
            if e.fim_flags & self.FIM_EXCHANGE:
                body["exchange"] = True
        elif name in ("unlink", "rmdir", "utimes"):
            body["flags"] = e.flags
        doc[name] = body
        return doc

    # -- files -------------------------------------------------------------
    def _file(self, f: Any, data: Any, size: int, req: _Request, *, parent_only: bool) -> Document:
        dec = self.dec
        mounts = dec.env.mounts
        raw = dec.bytes_at(data, size, f.path)
        mount_id = int(f.mount_id)
        fs_type: str | None = None
        if raw and not f.flags & self.F_SB_RELATIVE:
            source = "kernel"
        elif raw:
            # Walked up to the filesystem's root only: pick the mount.
            hint = req.resolve() if req.req else None
            placed = mounts.locate(int(f.dev), raw, hint)
            if placed is not None:
                raw, mount_id = placed.path, placed.mount.mount_id
                source = "kernel+mount_hint" if placed.ambiguous else "kernel"
            else:
                # Not in the agent's mount table (another mount namespace):
                # the path stays relative to its filesystem's root.
                source = "kernel_fs_root"
        else:
            raw = req.resolve() if req.req else b""
            source = "user"
            mount = mounts.containing(raw) if raw else None
            if mount is not None:
                mount_id, fs_type = mount.mount_id, mount.fs_type
        if parent_only and source != "user":
            source = "kernel_parent"
        doc = dec.file(data, size, f, path=raw)
        if not f.flags & self.F_PRESENT:
            # No inode: its attributes are unknown, not zero (uid 0 is root).
            for key in _INODE_KEYS:
                doc.pop(key, None)
        doc["mount_id"] = mount_id
        if fs_type is not None and not doc["filesystem"]:
            doc["filesystem"] = fs_type
        doc["path_source"] = source
        return doc

    def _owner(self, e: Any, file: Document) -> Document:
        users = self.dec.env.users
        uid = file["uid"] if e.uid == _UNCHANGED_ID else int(e.uid)
        gid = file["gid"] if e.gid == _UNCHANGED_ID else int(e.gid)
        return {
            "uid": uid,
            "gid": gid,
            "user": Lazy(lambda: users.user(uid)),
            "group": Lazy(lambda: users.group(gid)),
        }

    # -- mount, umount -------------------------------------------------------
    def _mount(self, name: str, e: Any, data: Any, size: int, req: _Request) -> Document:
        """mount: the kernel names the namespace's newest mount at exit
        (RS_FIM_DEST_KERNEL); it is ours when its mount point is the target.
        Otherwise (or for umount) the agent's mount table, refreshed here in
        ring-buffer order, says which mount is at the target."""
        dec = self.dec
        mounts = dec.env.mounts
        target = req.resolve() if req.req else b""
        ok = e.retval == 0
        body: Document = {"retval": int(e.retval), "flags": int(e.flags)}
        if name == "umount":
            # Gone from /proc by now; the table (or its memory) still has it.
            gone = (mounts.top_at(target) or mounts.removed_at(target)) if target else None
            if ok:
                mounts.refresh()
            body["mountpoint"] = path_fields(target, {"path_source": "user"})
            body["mount_id"] = gone.mount_id if gone is not None else 0
            body["fs_type"] = gone.fs_type if gone is not None else ""
            return body
        src_raw = dec.bytes_at(data, size, e.req_path2)
        if src_raw and e.flags & (MS_BIND | MS_MOVE):
            src_req = _Request(src_raw, dec.bytes_at(data, size, e.base2.path), req.root, True)
            src_raw = src_req.resolve()
        fs_arg = dec.bytes_at(data, size, e.fs_type).decode("utf-8", "backslashreplace")
        if ok:
            mounts.refresh()
        point, source, mount_id, fs_type = target, "user", 0, fs_arg
        kernel_point = dec.bytes_at(data, size, e.dest.path) if e.fim_flags & self.FIM_DEST_KERNEL else b""
        if ok and kernel_point and kernel_point == target:
            point, source, mount_id = kernel_point, "kernel", int(e.dest.mount_id)
            fs_type = dec.ffi.string(e.dest.fstype).decode("utf-8", "replace")
            dev = int(e.dest.dev)
            mounts.remember(Mount(mount_id, 0, dev >> 20, dev & 0xFFFFF, b"", point, fs_type, src_raw))
        elif ok and target:
            new = mounts.top_at(target)
            if new is not None:
                mount_id, fs_type = new.mount_id, new.fs_type
        body["mountpoint"] = path_fields(point, {"path_source": source})
        body["source"] = path_fields(src_raw, {})
        body["fs_type"] = fs_type
        body["mount_id"] = mount_id
        return body

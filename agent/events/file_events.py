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

from typing import TYPE_CHECKING, NamedTuple

from ..mounts import Mount
from ..paths import resolve_user_path
from .decode import FileObj, FileRecord
from .documents import path_fields
from .layout import layout
from .mount_api import SYSCALLS, mount_api_body

if TYPE_CHECKING:
    from .resolve import Document, Resolver


_UNCHANGED_ID = 0xFFFFFFFF
_INODE_KEYS = ("inode", "mode", "uid", "gid", "user", "group", "change_time", "modification_time", "is_deleted")
_MODE_BITS = 0o7777
_L = layout()
MS_BIND = _L.const("RS_MS_BIND")
MS_MOVE = _L.const("RS_MS_MOVE")
O_NOFOLLOW = _L.const("RS_O_NOFOLLOW")


class _Request(NamedTuple):  # a named tuple: made for every file event, built in one call
    """A path string the caller passed, with what the kernel said about where
    its lookup starts."""

    req: bytes           # the string, from user memory
    base: bytes          # the kernel-walked start directory (dirfd, cwd, or root)
    root: bytes          # the caller's root (chroot), "/" otherwise
    follow: bool         # the call follows a symlink in the last component

    def resolve(self) -> bytes:
        return resolve_user_path(self.root, self.base or b"/", self.req, follow_last=self.follow)


class FileEventResolver:
    """One file record -> one document; see the module docstring for paths."""

    def __init__(self, res: Resolver) -> None:
        self.res = res
        c = _L.const
        self.F_PRESENT = c("RS_FILE_PRESENT")
        self.F_SB_RELATIVE = c("RS_FILE_SB_RELATIVE")
        self.FIM_FOLLOW = c("RS_FIM_FOLLOW")
        self.FIM_OBJ_PARENT = c("RS_FIM_OBJ_PARENT")
        self.FIM_DEST_PARENT = c("RS_FIM_DEST_PARENT")
        self.FIM_EXCHANGE = c("RS_FIM_EXCHANGE")
        self.FIM_DEST_KERNEL = c("RS_FIM_DEST_KERNEL")

    def resolve(self, e: FileRecord) -> Document:
        name = e.hdr.type
        doc = self.res.envelope(e.hdr, e.task)
        root = e.root or b"/"
        follow = bool(e.fim_flags & self.FIM_FOLLOW)
        if name == "open":
            follow = not e.flags & O_NOFOLLOW
        req = _Request(e.req_path, e.base.path, root, follow)
        api = SYSCALLS.get(e.syscall_nr) if name == "mount" else None
        if api is not None:
            # fsmount, move_mount, open_tree, mount_setattr: mount events with mount(2)'s fields
            doc[name] = mount_api_body(self, api, e, req, _Request(e.req_path2, e.base2.path, root, True))
            return doc
        if name in ("mount", "umount"):
            doc[name] = self._mount(name, e, req)
            return doc
        file = self._file(e.file, req, parent_only=bool(e.fim_flags & self.FIM_OBJ_PARENT))
        body: Document = {"file": file, "retval": e.retval}
        if e.parent_inodes:
            # Parent directories the kernel filter walked (same mount, nearest
            # first): what a directory discarder is keyed on.
            file["parent_inodes"] = list(e.parent_inodes)
        if name == "open":
            body["flags"] = e.flags
            file["destination"] = {"mode": e.mode}
        elif name == "chmod" or name == "mkdir":
            file["destination"] = {"mode": e.mode & _MODE_BITS, "rights": e.mode & _MODE_BITS}
        elif name == "chown":
            file["destination"] = self._owner(e, file)
        elif name in ("setxattr", "removexattr"):
            xname = e.xattr_name.decode("utf-8", "backslashreplace")
            file["destination"] = {"name": xname, "namespace": xname.split(".", 1)[0] if "." in xname else ""}
            body["flags"] = e.flags
        elif name in ("rename", "link"):
            # Neither rename nor link follows a symlink at the new name.
            req2 = _Request(e.req_path2, e.base2.path, root, False)
            file["destination"] = self._file(e.dest, req2, parent_only=bool(e.fim_flags & self.FIM_DEST_PARENT))
            body["flags"] = e.flags
            if e.fim_flags & self.FIM_EXCHANGE:
                body["exchange"] = True
        elif name in ("unlink", "rmdir", "utimes"):
            body["flags"] = e.flags
        doc[name] = body
        return doc

    # -- files -------------------------------------------------------------
    def file_object(self, f: FileObj, req_path: bytes, base: FileObj, root: bytes, *, follow: bool) -> Document:
        """A file another kind of record names (chdir's new cwd...), resolved
        like a file event's `file`: from the kernel, else from the caller's
        string against its kernel-walked start directory."""
        return self._file(f, _Request(req_path, base.path, root or b"/", follow), parent_only=False)

    def _file(self, f: FileObj, req: _Request, *, parent_only: bool) -> Document:
        mounts = self.res.env.mounts
        raw = f.path
        mount_id = f.mount_id
        fs_type: str | None = None
        if raw and not f.flags & self.F_SB_RELATIVE:
            source = "kernel"
        elif raw:
            # Walked up to the filesystem's root only: pick the mount.
            hint = req.resolve() if req.req else None
            placed = mounts.locate(f.dev, raw, hint)
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
        doc = self.res.file(f, path=raw)
        if not f.flags & self.F_PRESENT:
            # No inode: its attributes are unknown, not zero (uid 0 is root).
            for key in _INODE_KEYS:
                doc.pop(key, None)
        doc["mount_id"] = mount_id
        if fs_type is not None and not doc["filesystem"]:
            doc["filesystem"] = fs_type
        doc["path_source"] = source
        return doc

    def _owner(self, e: FileRecord, file: Document) -> Document:
        users = self.res.env.users
        uid = file["uid"] if e.uid == _UNCHANGED_ID else e.uid
        gid = file["gid"] if e.gid == _UNCHANGED_ID else e.gid
        return {
            "uid": uid,
            "gid": gid,
            "user": users.lazy_user(uid),
            "group": users.lazy_group(gid),
        }

    # -- mount, umount -------------------------------------------------------
    def _mount(self, name: str, e: FileRecord, req: _Request) -> Document:
        """mount: the kernel names the namespace's newest mount at exit
        (RS_FIM_DEST_KERNEL); it is ours when its mount point is the target.
        Otherwise (or for umount) the agent's mount table, refreshed here in
        ring-buffer order, says which mount is at the target."""
        mounts = self.res.env.mounts
        target = req.resolve() if req.req else b""
        ok = e.retval == 0
        body: Document = {"retval": e.retval, "flags": e.flags}
        if name == "umount":
            # Gone from /proc by now; the table (or its memory) still has it.
            gone = (mounts.top_at(target) or mounts.removed_at(target)) if target else None
            if ok:
                mounts.refresh()
            body["mountpoint"] = path_fields(target, {"path_source": "user"})
            body["mount_id"] = gone.mount_id if gone is not None else 0
            body["fs_type"] = gone.fs_type if gone is not None else ""
            return body
        src_raw = e.req_path2
        if src_raw and e.flags & (MS_BIND | MS_MOVE):
            src_raw = _Request(src_raw, e.base2.path, req.root, True).resolve()
        fs_arg = e.fs_type.decode("utf-8", "backslashreplace")
        if ok:
            mounts.refresh()
        point, source, mount_id, fs_type = target, "user", 0, fs_arg
        kernel_point = e.dest.path if e.fim_flags & self.FIM_DEST_KERNEL else b""
        if ok and kernel_point and kernel_point == target:
            point, source, mount_id = kernel_point, "kernel", e.dest.mount_id
            fs_type = e.dest.fstype
            dev = e.dest.dev
            mounts.remember(Mount(mount_id, 0, dev >> 20, dev & 0xFFFFF, b"", point, fs_type, src_raw))
        elif ok and target:
            new = mounts.top_at(target)
            if new is not None:
                mount_id, fs_type = new.mount_id, new.fs_type
        body["mountpoint"] = path_fields(point, {"path_source": source})
        body["source"] = path_fields(src_raw, {})
        body["fs_type"] = fs_type
        body["mount_id"] = mount_id
        body["syscall"] = "mount"
        body["detached"] = False
        body["syscall_flags"] = e.flags
        return body

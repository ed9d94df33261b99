"""The new mount API as mount events with mount(2)'s fields: fsmount (a
detached mount: its type and source from the filesystem context),
move_mount (attached: its mount point walked in the kernel), open_tree
(a detached bind mount to be), mount_setattr (a remount of attributes);
failures (-errno); discarders invalidated by each."""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path

import pytest
from kutil import AT_FDCWD, FSMOUNT_CLOEXEC, MountAttr, assert_context, fs_context, mine, ok, syscall

from agent.events.layout import layout

pytestmark = pytest.mark.root

_c = layout().const
EINVAL, ENOENT = 22, 2
MOVE_MOUNT_F_EMPTY_PATH = _c("RS_MOVE_MOUNT_F_EMPTY_PATH")
OPEN_TREE_CLONE = _c("RS_OPEN_TREE_CLONE")
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID = (_c("RS_MOUNT_ATTR_RDONLY"), _c("RS_MOUNT_ATTR_NOEXEC"),
                                                          _c("RS_MOUNT_ATTR_NOSUID"))
MS_RDONLY, MS_NOEXEC, MS_NOSUID = _c("RS_MS_RDONLY"), _c("RS_MS_NOEXEC"), _c("RS_MS_NOSUID")
MS_MOVE, MS_BIND, MS_REMOUNT = _c("RS_MS_MOVE"), _c("RS_MS_BIND"), _c("RS_MS_REMOUNT")


def _by_syscall(col, name: str) -> list[dict]:
    return [d for d in mine(col, "mount") if d["mount"]["syscall"] == name]


def _mount_ids(point: Path) -> list[int]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        f = line.split()
        # mountinfo escapes space, tab, newline and backslash as \ooo
        if re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f[4]) == str(point):
            out.append(int(f[0]))
    return out


def test_fsmount_then_move_mount(tracer, tmp_path: Path) -> None:
    target = tmp_path / "new api"
    target.mkdir()
    with tracer.collect() as col:
        ctx = fs_context("tmpfs", "rsagent-fsmount")
        mfd = ok("fsmount", ctx, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSUID)
        ok("move_mount", mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)
        os.close(mfd)
        os.close(ctx)
    try:
        ids = _mount_ids(target)
        assert ids
        fsm = _by_syscall(col, "fsmount")
        assert len(fsm) == 1
        assert_context(fsm[0])
        m = fsm[0]["mount"]
        assert m["retval"] >= 0 and m["detached"] is True
        assert m["fs_type"] == "tmpfs" and m["source"]["path"] == "rsagent-fsmount"
        assert m["mountpoint"]["path"] == "" and m["flags"] == MS_NOEXEC | MS_NOSUID
        assert m["mount_id"] == ids[-1]            # the same mount, then attached
        mv = _by_syscall(col, "move_mount")
        assert len(mv) == 1
        m = mv[0]["mount"]
        assert m["retval"] == 0 and m["detached"] is False and m["flags"] == MS_MOVE
        assert m["mountpoint"] == {"path": str(target), "name": "new api", "path_source": "kernel"}
        assert m["fs_type"] == "tmpfs" and m["source"]["path"] == "rsagent-fsmount"
        assert m["mount_id"] == ids[-1]
    finally:
        ok("umount2", target, 0)


def test_open_tree_clone_is_a_bind_mount(tracer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    with tracer.collect() as col:
        tfd = ok("open_tree", AT_FDCWD, src, OPEN_TREE_CLONE)
        ok("move_mount", tfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)
        os.close(tfd)
        ok("open_tree", AT_FDCWD, src, 0)       # no clone: an O_PATH open, no mount: not reported
    try:
        trees = _by_syscall(col, "open_tree")
        assert len(trees) == 1
        m = trees[0]["mount"]
        assert m["detached"] is True and m["flags"] & MS_BIND and m["source"]["path"] == str(src)
        mv = _by_syscall(col, "move_mount")[0]["mount"]
        assert mv["mountpoint"]["path"] == str(target) and mv["mountpoint"]["path_source"] == "kernel"
        assert mv["mount_id"] == _mount_ids(target)[-1]
    finally:
        ok("umount2", target, 0)


def test_mount_setattr(tracer, tmp_path: Path) -> None:
    target = tmp_path / "m"
    target.mkdir()
    ok("mount", "rsagent-setattr", target, "tmpfs", 0, None)
    try:
        attr = MountAttr(attr_set=MOUNT_ATTR_RDONLY)
        with tracer.collect() as col:
            ok("mount_setattr", AT_FDCWD, target, 0, ctypes.byref(attr), ctypes.sizeof(attr))
        assert "ro" in [f for line in Path("/proc/self/mountinfo").read_text().splitlines()
                        if line.split()[4] == str(target) for f in line.split()[5].split(",")]
        m = _by_syscall(col, "mount_setattr")[0]["mount"]
        assert m["retval"] == 0 and m["flags"] == MS_REMOUNT | MS_BIND | MS_RDONLY
        assert m["mountpoint"]["path"] == str(target) and m["fs_type"] == "tmpfs"
        assert m["mount_id"] == _mount_ids(target)[-1]
    finally:
        ok("umount2", target, 0)


def test_failures_report_negative_errno(tracer, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with tracer.collect() as col:
        ctx = fs_context("tmpfs", "rsagent-nocreate", create=False)
        assert syscall("fsmount", ctx, FSMOUNT_CLOEXEC, 0) == -EINVAL     # no FSCONFIG_CMD_CREATE
        os.close(ctx)
        assert syscall("open_tree", AT_FDCWD, missing, OPEN_TREE_CLONE) == -ENOENT
        attr = MountAttr(attr_set=MOUNT_ATTR_RDONLY)
        assert syscall("mount_setattr", AT_FDCWD, tmp_path, 0, ctypes.byref(attr), ctypes.sizeof(attr)) == -EINVAL
    fsm = _by_syscall(col, "fsmount")[0]["mount"]
    assert fsm["retval"] == -EINVAL and fsm["fs_type"] == "tmpfs" and fsm["source"]["path"] == "rsagent-nocreate"
    assert fsm["mount_id"] == 0
    tree = _by_syscall(col, "open_tree")[0]["mount"]
    assert tree["retval"] == -ENOENT and tree["source"]["path"] == str(missing)
    setattr_ = _by_syscall(col, "mount_setattr")[0]["mount"]
    assert setattr_["retval"] == -EINVAL and setattr_["mountpoint"]["path"] == str(tmp_path)


def _revision(tracer) -> int:
    obj = tracer.runtime._obj
    assert obj is not None
    raw = obj.map("discarders_revision").lookup(0)
    assert isinstance(raw, bytes)
    return int.from_bytes(raw, "little")


def test_every_successful_call_invalidates_the_discarders(tracer, tmp_path: Path) -> None:
    """Mounts change what a path names: a discarder decided before one no
    longer holds (docs/filters.md). Each call of the new API that succeeds
    moves the revision every discarder is checked against."""
    target = tmp_path / "t"
    target.mkdir()
    before = _revision(tracer)
    ctx = fs_context("tmpfs", "rsagent-rev")
    mfd = ok("fsmount", ctx, FSMOUNT_CLOEXEC, 0)
    after_fsmount = _revision(tracer)
    ok("move_mount", mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)
    after_move = _revision(tracer)
    os.close(mfd)
    os.close(ctx)
    try:
        attr = MountAttr(attr_set=MOUNT_ATTR_RDONLY)
        ok("mount_setattr", AT_FDCWD, target, 0, ctypes.byref(attr), ctypes.sizeof(attr))
        after_setattr = _revision(tracer)
    finally:
        ok("umount2", target, 0)
    assert before < after_fsmount < after_move < after_setattr

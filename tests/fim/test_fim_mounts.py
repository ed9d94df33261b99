"""mount and umount events, and the mount table kept in step with them: the
new mount's id, mount point, source and filesystem type; the unmounted one's
id; files on a new mount resolved with its id right after."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fimutil import (
    MS_BIND,
    assert_file,
    file_of,
    mount_id_of,
    mountinfo,
    ok,
    only,
    syscall,
)

pytestmark = pytest.mark.root

EINVAL, ENODEV = 22, 19


def _mount_doc(col, event_type: str, mountpoint: Path) -> dict:
    docs = [d for d in col.of_type(event_type)
            if d["process"]["pid"] == os.getpid() and d[event_type]["mountpoint"]["path"] == str(mountpoint)]
    assert len(docs) == 1, [d[event_type] for d in col.of_type(event_type)]
    return docs[0][event_type]


def _ids_at(point: Path) -> list[int]:
    return [m[0] for m in mountinfo() if m[3] == os.fsencode(point)]


def test_mount_and_umount_of_a_tmpfs(tracer, tmp_path: Path) -> None:
    target = tmp_path / "mnt point"
    target.mkdir()
    with tracer.collect() as col:
        ok("mount", "rsagent-src", target, "tmpfs", 0, "size=1m")
        mount_id = _ids_at(target)[-1]
        f = target / "on-tmpfs"
        f.write_text("x")
        ok("chmod", f, 0o600)
        ok("umount2", target, 0)
    m = _mount_doc(col, "mount", target)
    assert m["retval"] == 0
    assert m["source"]["path"] == "rsagent-src"
    assert m["fs_type"] == "tmpfs"
    assert m["mount_id"] == mount_id
    assert m["mountpoint"]["path_source"] == "kernel"   # the namespace's newest mount, at exit
    # The file on the new mount: placed with the new mount's id.
    chmod = file_of(only(col, "chmod", f))
    assert chmod["mount_id"] == mount_id and chmod["filesystem"] == "tmpfs"
    u = _mount_doc(col, "umount", target)
    assert u["retval"] == 0
    assert u["mount_id"] == mount_id
    assert u["fs_type"] == "tmpfs"
    assert not _ids_at(target)


def test_bind_mount_through_a_relative_path_and_a_symlink(tracer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "via").symlink_to(tmp_path)
    old = os.getcwd()
    with tracer.collect() as col:
        os.chdir(tmp_path)
        try:
            ok("mount", "src", "via/target", None, MS_BIND, None)
        finally:
            os.chdir(old)
    try:
        m = _mount_doc(col, "mount", target)
        assert m["retval"] == 0
        assert m["source"]["path"] == str(src)
        assert m["fs_type"] == "ext4"
        assert m["mount_id"] == mount_id_of(target)
        assert m["flags"] & MS_BIND
    finally:
        ok("umount2", target, 0)


def test_failed_mount_and_umount_report_negative_errno(tracer, tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    with tracer.collect() as col:
        assert syscall("mount", "none", target, "no-such-fs", 0, None) == -ENODEV
        assert syscall("umount2", target, 0) == -EINVAL
    m = _mount_doc(col, "mount", target)
    assert m["retval"] == -ENODEV
    assert m["fs_type"] == "no-such-fs"
    assert m["mount_id"] == 0
    u = _mount_doc(col, "umount", target)
    assert u["retval"] == -EINVAL


def test_files_on_a_mount_made_before_the_agent_saw_it(tracer, tmp_path: Path) -> None:
    """A filesystem mounted while mount events are not decoded yet (the
    table is refreshed on a miss)."""
    target = tmp_path / "m"
    target.mkdir()
    ok("mount", "rsagent-early", target, "tmpfs", 0, None)
    try:
        f = target / "f"
        f.write_text("x")
        with tracer.collect() as col:
            ok("unlink", f)
        doc = only(col, "unlink", f)
        assert_file(file_of(doc), f, None)
        assert file_of(doc)["filesystem"] == "tmpfs"
    finally:
        ok("umount2", target, 0)

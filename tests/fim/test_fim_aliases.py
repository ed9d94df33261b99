"""The alias suite: every way of naming a file gives its one canonical path
(absolute, no `.`/`..`, symlinks resolved as the kernel did), with the right
inode and mount: relative after chdir, `..` (also through a symlink, where a
lexical join would be wrong), a symlinked directory, a dirfd, a bind mount,
overlayfs upper vs lower, a chrooted process, long and deep paths, odd names,
RENAME_EXCHANGE."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fimutil import (
    AT_FDCWD,
    MS_BIND,
    RENAME_EXCHANGE,
    assert_file,
    events,
    file_of,
    mount_id_of,
    ok,
    only,
    syscall,
)

pytestmark = pytest.mark.root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "d"
    d.mkdir()
    (d / "f").write_text("x")
    (tmp_path / "other").mkdir()
    return d


def _chmods(col, path: Path) -> list[dict]:
    return events(col, "chmod", path)


def test_relative_dotdot_symlinked_dir_and_dirfd_give_one_path(tracer, tree: Path) -> None:
    f = tree / "f"
    top = tree.parent
    (top / "link").symlink_to(tree)
    old = os.getcwd()
    with tracer.collect() as col:
        os.chdir(tree)
        try:
            ok("chmod", "f", 0o601)                                    # relative after chdir
            ok("chmod", "../other/../d/./f", 0o602)                     # .. and .
            ok("chmod", "..//d//f", 0o603)                              # //
        finally:
            os.chdir(old)
        ok("chmod", top / "link" / "f", 0o604)                          # symlinked directory
        fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
        try:
            ok("fchmodat", fd, "f", 0o605)                              # dirfd
        finally:
            os.close(fd)
    docs = _chmods(col, f)
    assert [file_of(d)["destination"]["mode"] for d in docs] == [0o601, 0o602, 0o603, 0o604, 0o605]
    for d in docs:
        assert_file(file_of(d), f, None)
        assert file_of(d)["inode"] == f.stat().st_ino


def test_dotdot_after_a_symlink_is_resolved_physically(tracer, tmp_path: Path) -> None:
    """`cat /var/spool/cron/crontabs/../shadow`: `..` applies to where the
    symlink leads, not to the string."""
    real_dir = tmp_path / "etc" / "cron"
    real_dir.mkdir(parents=True)
    shadow = tmp_path / "etc" / "shadow"
    shadow.write_text("s")
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "crontabs").symlink_to(real_dir)
    lexical = spool / "shadow"
    with tracer.collect() as col:
        ok("chmod", f"{spool}/crontabs/../shadow", 0o600)
        # the same string, for a call that fails: resolved in user space,
        # following the symlink too
        assert syscall("unlink", f"{spool}/crontabs/../missing") == -2
    assert_file(file_of(only(col, "chmod", shadow)), shadow, shadow.stat())
    assert not events(col, "chmod", lexical)
    failed = only(col, "unlink", tmp_path / "etc" / "missing")
    assert file_of(failed)["path_source"] == "user"


def test_bind_mount_reports_the_mount_the_path_went_through(tracer, tree: Path) -> None:
    bind = tree.parent / "bind"
    bind.mkdir()
    outside = tree.parent / "outside"
    outside.write_text("o")
    ok("mount", tree, bind, None, MS_BIND, None)
    try:
        bind_id = mount_id_of(bind)
        with tracer.collect() as col:
            ok("chmod", bind / "f", 0o611)
            ok("chmod", tree / "f", 0o612)
            (bind / "g").write_text("y")
            ok("unlink", bind / "g")
            ok("chmod", outside, 0o613)
        # Not below the bind mount's root: only the filesystem's own mount
        # reaches it, and the kernel says so (no caller's hint needed).
        beside = file_of(only(col, "chmod", outside))
        assert beside["path_source"] == "kernel" and beside["mount_id"] == mount_id_of(outside) != bind_id
        via_bind = file_of(only(col, "chmod", bind / "f"))
        assert via_bind["mount_id"] == bind_id
        assert via_bind["path_source"] == "kernel+mount_hint"
        assert via_bind["inode"] == (tree / "f").stat().st_ino
        direct = file_of(only(col, "chmod", tree / "f"))
        assert direct["mount_id"] == mount_id_of(tree) != bind_id
        assert file_of(only(col, "unlink", bind / "g"))["mount_id"] == bind_id
    finally:
        ok("umount2", bind, 0)


@pytest.fixture
def overlay(tmp_path: Path) -> Iterator[Path]:
    base = tmp_path / "ovl"
    base.mkdir()
    ok("mount", "rsagent-ovl-base", base, "tmpfs", 0, None)
    try:
        for d in ("lower", "upper", "work", "merged"):
            (base / d).mkdir()
        (base / "lower" / "lower-file").write_text("l")
        (base / "lower" / "lower-gone").write_text("l")
        (base / "lower" / "ldir").mkdir()
        opts = f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work"
        ok("mount", "overlay", base / "merged", "overlay", 0, opts)
        try:
            yield base / "merged"
        finally:
            ok("umount2", base / "merged", 0)
    finally:
        ok("umount2", base, 0)


def test_overlayfs_upper_and_lower_layers(tracer, overlay: Path) -> None:
    lower_file = overlay / "lower-file"
    gone = overlay / "lower-gone"
    new = overlay / "new"
    moved = overlay / "ldir" / "moved"
    ovl_id = mount_id_of(overlay)
    with tracer.collect() as col:
        os.close(os.open(lower_file, os.O_RDONLY))   # no copy-up
        ok("chmod", lower_file, 0o640)                # copy-up
        ok("unlink", gone)                            # a whiteout hides the lower file
        new.write_text("n")
        ok("rename", new, moved)
        ok("mkdir", overlay / "newdir", 0o755)
        ok("link", moved, overlay / "hard")
        ok("unlink", moved)                           # in the upper layer
    opened = events(col, "open", lower_file)
    assert opened and opened[0]["open"]["file"]["in_upper_layer"] is False
    ch = file_of(only(col, "chmod", lower_file))
    assert_file(ch, lower_file, lower_file.stat())
    assert ch["in_upper_layer"] is True and ch["filesystem"] == "overlay" and ch["mount_id"] == ovl_id
    # Removing a lower-layer file changes only the overlay directory: the
    # directory from the kernel, the name from the caller; no inode.
    un = file_of(only(col, "unlink", gone))
    assert_file(un, gone, None, source="kernel_parent")
    assert "inode" not in un and un["filesystem"] == "overlay"
    rn = file_of(only(col, "rename", new))
    assert_file(rn, new, None)
    assert_file(rn["destination"], moved, None)
    assert rn["destination"]["inode"] == (overlay / "hard").stat().st_ino
    mk = file_of(only(col, "mkdir", overlay / "newdir"))
    assert_file(mk, overlay / "newdir", (overlay / "newdir").stat())
    assert mk["in_upper_layer"] is True
    ln = file_of(only(col, "link", moved))
    assert_file(ln["destination"], overlay / "hard", None, source="kernel_parent")
    gone_upper = file_of(only(col, "unlink", moved))
    assert_file(gone_upper, moved, None)
    assert gone_upper["inode"] == (overlay / "hard").stat().st_ino and gone_upper["in_upper_layer"] is True


def test_chrooted_process_reports_host_paths(tracer, tree: Path) -> None:
    (tree / "sub").mkdir()
    (tree / "sub" / "g").write_text("g")
    (tree / "abs-link").symlink_to("/sub")       # absolute inside the chroot
    with tracer.collect() as col:
        pid = os.fork()
        if pid == 0:  # the child: chroot, then act on paths inside it
            code = 0
            try:
                os.chroot(tree)
                os.chdir("/")
                for args in (("chmod", "/f", 0o621), ("chmod", "sub/../f", 0o622),
                             ("chmod", "/abs-link/g", 0o623)):
                    code |= syscall(*args) != 0
                code |= syscall("chmod", "/abs-link/missing", 0o600) != -2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert status == 0
    docs = events(col, "chmod", tree / "f", pid=pid)
    assert [file_of(d)["destination"]["mode"] for d in docs] == [0o621, 0o622]
    for d in docs:
        assert_file(file_of(d), tree / "f", None)
        assert file_of(d)["inode"] == (tree / "f").stat().st_ino
    g = only(col, "chmod", tree / "sub" / "g", pid=pid)
    assert_file(file_of(g), tree / "sub" / "g", (tree / "sub" / "g").stat())
    # A failed call inside the chroot: the absolute symlink resolves from the chroot.
    missing = only(col, "chmod", tree / "sub" / "missing", pid=pid)
    assert file_of(missing)["path_source"] == "user"


def _deep(base: Path, names: list[str]) -> Path:
    """mkdir a chain of directories relative to dirfds (each call stays short)."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    return base.joinpath(*names) / "f"


@pytest.mark.parametrize("kind", ["over-255", "near-PATH_MAX", "100-deep"])
def test_long_and_deep_paths(tracer, tmp_path: Path, kind: str) -> None:
    if kind == "over-255":
        names = ["a" * 200, "b" * 100]
    elif kind == "near-PATH_MAX":
        room = 4095 - len(str(tmp_path)) - len("/f") - 10
        names = ["n" * 250] * (room // 251)
        names.append("m" * (room - 251 * len(names)))
    else:
        names = ["lvl"] * 100
    f = _deep(tmp_path, names)
    assert len(str(f)) < 4096
    with tracer.collect() as col:
        ok("chmod", f, 0o631)
        ok("unlink", f)
    if kind == "near-PATH_MAX":
        assert len(str(f)) > 4000
    for t in ("chmod", "unlink"):
        doc = file_of(only(col, t, f))
        assert_file(doc, f, None)
        assert "path_truncated" not in doc


def test_path_beyond_path_max_is_a_truncated_suffix(tracer, tmp_path: Path) -> None:
    f = _deep(tmp_path, ["z" * 250] * 20)           # > 5000 bytes
    parent_fd = os.open(tmp_path.joinpath(*(["z" * 250] * 10)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        rel = "/".join(["z" * 250] * 10) + "/f"
        ino = os.stat(rel, dir_fd=parent_fd).st_ino
        with tracer.collect() as col:
            ok("fchmodat", parent_fd, rel, 0o641)
    finally:
        os.close(parent_fd)
    docs = [d for d in col.of_type("chmod") if d["process"]["pid"] == os.getpid()]
    assert len(docs) == 1
    file = file_of(docs[0])
    assert file["path_truncated"] is True
    assert str(f).endswith(file["path"]) and 3800 < len(file["path"]) < 4096
    assert file["inode"] == ino


@pytest.mark.parametrize("name", [b"with space", b"new\nline", b"bad-\xff\xfe-utf8", "caf\u00e9".encode()])
def test_odd_names_are_lossless(tracer, tmp_path: Path, name: bytes) -> None:
    base = os.fsencode(tmp_path)
    f = base + b"/" + name
    renamed = base + b"/renamed " + name
    with open(f, "wb"):
        pass
    with tracer.collect() as col:
        ok("chmod", f, 0o651)
        ok("rename", f, renamed)
        ok("unlink", renamed)
    ch = file_of(only(col, "chmod", f))
    assert_file(ch, f, None)
    assert ch["name"] == name.decode("utf-8", "backslashreplace")
    rn = file_of(only(col, "rename", f))
    assert_file(rn["destination"], renamed, None)
    un = file_of(only(col, "unlink", renamed))
    if b"\xff" in name:
        assert base64.b64decode(un["path_raw_b64"]) == renamed
        assert "\\xff" in un["path"]
    else:
        assert "path_raw_b64" not in un


def test_rename_exchange_through_dirfds_and_relative_paths(tracer, tree: Path) -> None:
    a = tree / "f"
    b = tree.parent / "other" / "b"
    b.write_text("b")
    ino_a, ino_b = a.stat().st_ino, b.stat().st_ino
    old = os.getcwd()
    fd = os.open(tree.parent / "other", os.O_RDONLY | os.O_DIRECTORY)
    with tracer.collect() as col:
        os.chdir(tree)
        try:
            ok("renameat2", AT_FDCWD, "../d/./f", fd, "b", RENAME_EXCHANGE)
        finally:
            os.chdir(old)
            os.close(fd)
    one, two = only(col, "rename", a), only(col, "rename", b)
    assert (file_of(one)["inode"], file_of(one)["destination"]["path"]) == (ino_a, str(b))
    assert (file_of(two)["inode"], file_of(two)["destination"]["path"]) == (ino_b, str(a))
    assert stat.S_ISREG(file_of(two)["mode"])
    assert b.read_text() == "x"


CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE, MS_MOVE = 0x4000, 1 << 18, 8192


def test_process_in_its_own_mount_namespace_reports_its_own_view(tracer, tmp_path: Path) -> None:
    """A container's view: the filesystem has one mount in the host's
    namespace and one in the caller's, at another place; the path is the
    caller's, walked in the kernel (as an open's would be)."""
    import ctypes

    host_point, ns_point = tmp_path / "host-point", tmp_path / "ns-point"
    host_point.mkdir()
    ns_point.mkdir()
    ok("mount", "rsagent-ns", host_point, "tmpfs", 0, None)
    try:
        f = host_point / "f"
        f.write_text("x")
        ino = f.stat().st_ino
        libc = ctypes.CDLL(None, use_errno=True)
        with tracer.collect() as col:
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    if (libc.unshare(CLONE_NEWNS) == 0
                            and syscall("mount", None, "/", None, MS_REC | MS_PRIVATE, None) == 0
                            and syscall("mount", host_point, ns_point, None, MS_MOVE, None) == 0):
                        code = 0 if syscall("chmod", ns_point / "f", 0o600) == 0 else 2
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
        assert status == 0
        doc = file_of(only(col, "chmod", ns_point / "f", pid=pid))
        assert doc["path_source"] == "kernel" and doc["inode"] == ino and doc["filesystem"] == "tmpfs"
        assert not events(col, "chmod", f, pid=pid)
    finally:
        ok("umount2", host_point, 0)

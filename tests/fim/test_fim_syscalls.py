"""Every file-integrity event type through every syscall variant, on the
real kernel with the real probes: raw syscalls (libc ``syscall()``), each
document checked for path, name, inode (= os.stat), mount id, mode/owner,
the type's destination fields, and retval (negative errno on failure)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from fimutil import (
    AT_EMPTY_PATH,
    AT_FDCWD,
    AT_REMOVEDIR,
    AT_SYMLINK_NOFOLLOW,
    RENAME_EXCHANGE,
    RENAME_NOREPLACE,
    assert_file,
    file_of,
    ok,
    only,
    pack_utimbuf,
    syscall,
    timespecs,
    timevals,
    xattr_args,
)

pytestmark = pytest.mark.root

ENOENT, EEXIST, ENOTEMPTY, ENODATA = 2, 17, 39, 61


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "d"
    d.mkdir()
    (d / "f").write_text("x")
    return d


def _dirfd(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


# -- chmod -------------------------------------------------------------------

CHMOD_VARIANTS = {
    "chmod": lambda d, f, m: ok("chmod", f, m),
    "fchmod": lambda d, f, m: _with_fd(f, lambda fd: ok("fchmod", fd, m)),
    "fchmodat": lambda d, f, m: _with_dirfd(d, lambda fd: ok("fchmodat", fd, "f", m)),
    "fchmodat2": lambda d, f, m: _with_dirfd(d, lambda fd: ok("fchmodat2", fd, "f", m, 0)),
    "fchmodat2_empty_path": lambda d, f, m: _with_fd(f, lambda fd: ok("fchmodat2", fd, "", m, AT_EMPTY_PATH)),
}


def _with_fd(path: Path, fn, flags: int = os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        return fn(fd)
    finally:
        os.close(fd)


def _with_dirfd(path: Path, fn):
    return _with_fd(path, fn, os.O_RDONLY | os.O_DIRECTORY)


@pytest.mark.parametrize("variant", sorted(CHMOD_VARIANTS))
def test_chmod_variants(tracer, tree: Path, variant: str) -> None:
    f = tree / "f"
    with tracer.collect() as col:
        CHMOD_VARIANTS[variant](tree, f, 0o4751)
    st = f.stat()
    assert stat.S_IMODE(st.st_mode) == 0o4751
    doc = only(col, "chmod", f)
    assert doc["chmod"]["retval"] == 0
    assert_file(file_of(doc), f, st)
    assert file_of(doc)["destination"] == {"mode": 0o4751, "rights": 0o4751}


def test_chmod_failure_reports_negative_errno_and_the_requested_path(tracer, tree: Path) -> None:
    missing = tree / "nope" / "x"
    with tracer.collect() as col:
        assert syscall("chmod", missing, 0o600) == -ENOENT
    doc = only(col, "chmod", missing)
    assert doc["chmod"]["retval"] == -ENOENT
    assert_file(file_of(doc), missing, None, source="user")
    assert "inode" not in file_of(doc)


# -- chown -------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["chown", "fchown", "lchown", "fchownat", "fchownat_empty_path"])
def test_chown_variants(tracer, tree: Path, variant: str) -> None:
    f = tree / "f"
    link = tree / "lnk"
    link.symlink_to("f")
    target = link if variant == "lchown" else f
    with tracer.collect() as col:
        if variant == "chown":
            ok("chown", f, 1, 2)
        elif variant == "fchown":
            _with_fd(f, lambda fd: ok("fchown", fd, 1, 2))
        elif variant == "lchown":
            ok("lchown", link, 1, 2)
        elif variant == "fchownat":
            _with_dirfd(tree, lambda fd: ok("fchownat", fd, "f", 1, 2, 0))
        else:
            _with_fd(f, lambda fd: ok("fchownat", fd, "", 1, 2, AT_EMPTY_PATH))
    st = os.lstat(target)
    assert (st.st_uid, st.st_gid) == (1, 2)
    doc = only(col, "chown", target)
    assert doc["chown"]["retval"] == 0
    assert_file(file_of(doc), target, st)
    assert file_of(doc)["user"] == "daemon"
    assert file_of(doc)["destination"] == {"uid": 1, "gid": 2, "user": "daemon", "group": "bin"}


def test_chown_unchanged_owner_reports_the_current_owner(tracer, tree: Path) -> None:
    f = tree / "f"
    os.chown(f, 1, 2)
    with tracer.collect() as col:
        ok("chown", f, 3, 0xFFFFFFFF)  # -1: gid unchanged
    dest = file_of(only(col, "chown", f))["destination"]
    assert (dest["uid"], dest["gid"]) == (3, 2)


def test_chown_failure(tracer, tree: Path) -> None:
    missing = tree / "missing"
    with tracer.collect() as col:
        assert syscall("chown", missing, 1, 1) == -ENOENT
    doc = only(col, "chown", missing)
    assert doc["chown"]["retval"] == -ENOENT
    assert file_of(doc)["path_source"] == "user"


# -- mkdir -------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["mkdir", "mkdirat"])
def test_mkdir_variants(tracer, tree: Path, variant: str) -> None:
    new = tree / "new dir"
    with tracer.collect() as col:
        if variant == "mkdir":
            ok("mkdir", new, 0o750)
        else:
            _with_dirfd(tree, lambda fd: ok("mkdirat", fd, "new dir", 0o750))
    st = new.stat()
    doc = only(col, "mkdir", new)
    assert doc["mkdir"]["retval"] == 0
    assert_file(file_of(doc), new, st)
    assert file_of(doc)["destination"]["mode"] == 0o750


def test_mkdir_failure(tracer, tree: Path) -> None:
    with tracer.collect() as col:
        assert syscall("mkdir", tree / "f", 0o755) == -EEXIST
    doc = only(col, "mkdir", tree / "f")
    assert doc["mkdir"]["retval"] == -EEXIST
    assert file_of(doc)["path_source"] == "user"


# -- rmdir -------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["rmdir", "unlinkat_removedir"])
def test_rmdir_variants(tracer, tree: Path, variant: str) -> None:
    gone = tree / "gone"
    gone.mkdir()
    st = gone.stat()
    with tracer.collect() as col:
        if variant == "rmdir":
            ok("rmdir", gone)
        else:
            _with_dirfd(tree, lambda fd: ok("unlinkat", fd, "gone", AT_REMOVEDIR))
    doc = only(col, "rmdir", gone)
    assert doc["rmdir"]["retval"] == 0
    assert_file(file_of(doc), gone, None)
    assert file_of(doc)["inode"] == st.st_ino
    assert stat.S_ISDIR(file_of(doc)["mode"])
    assert not col.of_type("unlink", lambda d: d["unlink"]["file"]["path"] == str(gone))


def test_rmdir_failure(tracer, tree: Path) -> None:
    with tracer.collect() as col:
        assert syscall("rmdir", tree) == -ENOTEMPTY
    doc = only(col, "rmdir", tree)
    assert doc["rmdir"]["retval"] == -ENOTEMPTY
    assert file_of(doc)["path_source"] == "user"


# -- unlink ------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["unlink", "unlinkat"])
def test_unlink_variants(tracer, tree: Path, variant: str) -> None:
    f = tree / "f"
    st = f.stat()
    with tracer.collect() as col:
        if variant == "unlink":
            ok("unlink", f)
        else:
            _with_dirfd(tree, lambda fd: ok("unlinkat", fd, "f", 0))
    doc = only(col, "unlink", f)
    assert doc["unlink"]["retval"] == 0
    assert doc["unlink"]["flags"] == 0
    assert_file(file_of(doc), f, None)
    assert file_of(doc)["inode"] == st.st_ino
    assert file_of(doc)["mode"] == st.st_mode


def test_unlink_of_one_hard_link_reports_the_name_removed(tracer, tree: Path) -> None:
    f = tree / "f"
    other = tree / "other"
    os.link(f, other)
    os.stat(other), os.stat(f)  # both aliases in the dentry cache
    with tracer.collect() as col:
        ok("unlink", other)
    doc = only(col, "unlink", other)
    assert file_of(doc)["inode"] == f.stat().st_ino


def test_unlink_failure(tracer, tree: Path) -> None:
    with tracer.collect() as col:
        assert syscall("unlinkat", AT_FDCWD, tree / "nope", 0) == -ENOENT
    doc = only(col, "unlink", tree / "nope")
    assert doc["unlink"]["retval"] == -ENOENT


# -- rename ------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["rename", "renameat", "renameat2", "renameat2_noreplace"])
def test_rename_variants(tracer, tree: Path, variant: str) -> None:
    f = tree / "f"
    sub = tree / "sub"
    sub.mkdir()
    new = sub / "moved"
    st = f.stat()
    with tracer.collect() as col:
        if variant == "rename":
            ok("rename", f, new)
        elif variant == "renameat":
            _with_dirfd(tree, lambda a: _with_dirfd(sub, lambda b: ok("renameat", a, "f", b, "moved")))
        elif variant == "renameat2":
            _with_dirfd(tree, lambda a: ok("renameat2", a, "f", AT_FDCWD, new, 0))
        else:
            ok("renameat2", AT_FDCWD, f, AT_FDCWD, new, RENAME_NOREPLACE)
    doc = only(col, "rename", f)
    assert doc["rename"]["retval"] == 0
    assert_file(file_of(doc), f, None)
    assert file_of(doc)["inode"] == st.st_ino
    dest = file_of(doc)["destination"]
    assert_file(dest, new, new.stat())


def test_rename_over_an_existing_file(tracer, tree: Path) -> None:
    f, victim = tree / "f", tree / "victim"
    victim.write_text("old")
    with tracer.collect() as col:
        ok("rename", f, victim)
    doc = only(col, "rename", f)
    assert_file(file_of(doc)["destination"], victim, victim.stat())


def test_rename_noreplace_failure(tracer, tree: Path) -> None:
    f, other = tree / "f", tree / "other"
    other.write_text("y")
    with tracer.collect() as col:
        assert syscall("renameat2", AT_FDCWD, f, AT_FDCWD, other, RENAME_NOREPLACE) == -EEXIST
    doc = only(col, "rename", f)
    assert doc["rename"]["retval"] == -EEXIST
    assert file_of(doc)["path_source"] == "user"
    assert file_of(doc)["destination"]["path"] == str(other)
    assert file_of(doc)["destination"]["path_source"] == "user"


def test_rename_exchange_reports_both_files(tracer, tree: Path) -> None:
    a, b = tree / "f", tree / "b"
    b.mkdir()
    ino_a, ino_b = a.stat().st_ino, b.stat().st_ino
    with tracer.collect() as col:
        ok("renameat2", AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
    first, second = only(col, "rename", a), only(col, "rename", b)
    assert file_of(first)["inode"] == ino_a and file_of(first)["destination"]["inode"] == ino_a
    assert file_of(first)["destination"]["path"] == str(b)
    assert file_of(second)["inode"] == ino_b and file_of(second)["destination"]["inode"] == ino_b
    assert file_of(second)["destination"]["path"] == str(a)
    assert stat.S_ISDIR(file_of(second)["mode"])
    assert first["rename"]["exchange"] and second["rename"]["exchange"]


# -- link --------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["link", "linkat", "linkat_empty_path"])
def test_link_variants(tracer, tree: Path, variant: str) -> None:
    f = tree / "f"
    sub = tree / "sub"
    sub.mkdir()
    new = sub / "hard link"
    with tracer.collect() as col:
        if variant == "link":
            ok("link", f, new)
        elif variant == "linkat":
            _with_dirfd(tree, lambda a: _with_dirfd(sub, lambda b: ok("linkat", a, "f", b, "hard link", 0)))
        else:
            _with_fd(f, lambda fd: ok("linkat", fd, "", AT_FDCWD, new, AT_EMPTY_PATH))
    st = f.stat()
    assert st.st_nlink == 2
    doc = only(col, "link", f)
    assert doc["link"]["retval"] == 0
    assert_file(file_of(doc), f, st)
    assert_file(file_of(doc)["destination"], new, st)


def test_link_failure(tracer, tree: Path) -> None:
    with tracer.collect() as col:
        assert syscall("link", tree / "f", tree) == -EEXIST
    doc = only(col, "link", tree / "f")
    assert doc["link"]["retval"] == -EEXIST


# -- utimes ------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["utime", "utimes", "utimensat", "utimensat_fd", "utimensat_nofollow",
                                     "futimesat", "futimesat_fd"])
def test_utimes_variants(tracer, tree: Path, variant: str) -> None:
    f = tree / "f"
    mtime = 1_000_000_007
    with tracer.collect() as col:
        if variant == "utime":
            ptr, _keep = pack_utimbuf(5, mtime)
            ok("utime", f, ptr)
        elif variant == "utimes":
            ptr, _keep = timevals(5, mtime)
            ok("utimes", f, ptr)
        elif variant == "utimensat":
            ptr, _keep = timespecs(5, mtime)
            _with_dirfd(tree, lambda fd: ok("utimensat", fd, "f", ptr, 0))
        elif variant == "utimensat_fd":
            ptr, _keep = timespecs(5, mtime)
            _with_fd(f, lambda fd: ok("utimensat", fd, None, ptr, 0))
        elif variant == "utimensat_nofollow":
            ptr, _keep = timespecs(5, mtime)
            ok("utimensat", AT_FDCWD, f, ptr, AT_SYMLINK_NOFOLLOW)
        elif variant == "futimesat":
            ptr, _keep = timevals(5, mtime)
            _with_dirfd(tree, lambda fd: ok("futimesat", fd, "f", ptr))
        else:
            ptr, _keep = timevals(5, mtime)
            _with_fd(f, lambda fd: ok("futimesat", fd, None, ptr))
    st = f.stat()
    assert st.st_mtime_ns == mtime * 10**9
    doc = only(col, "utimes", f)
    assert doc["utimes"]["retval"] == 0
    assert_file(file_of(doc), f, st)
    assert file_of(doc)["modification_time"] == mtime * 10**9
    assert file_of(doc)["change_time"] == st.st_ctime_ns


def test_utimes_failure(tracer, tree: Path) -> None:
    with tracer.collect() as col:
        assert syscall("utimensat", AT_FDCWD, tree / "nope", None, 0) == -ENOENT
    assert only(col, "utimes", tree / "nope")["utimes"]["retval"] == -ENOENT


# -- setxattr / removexattr -----------------------------------------------------

@pytest.mark.parametrize("variant", ["setxattr", "lsetxattr", "fsetxattr", "setxattrat"])
def test_setxattr_variants(tracer, tree: Path, variant: str) -> None:
    f = tree / "f"
    with tracer.collect() as col:
        if variant == "setxattr":
            ok("setxattr", f, "user.rsagent", b"v", 1, 0)
        elif variant == "lsetxattr":
            ok("lsetxattr", f, "user.rsagent", b"v", 1, 0)
        elif variant == "fsetxattr":
            _with_fd(f, lambda fd: ok("fsetxattr", fd, "user.rsagent", b"v", 1, 0))
        else:
            ptr, _keep = xattr_args(b"v", 1)  # XATTR_CREATE
            _with_dirfd(tree, lambda fd: ok("setxattrat", fd, "f", 0, "user.rsagent", ptr, 16))
    assert os.getxattr(f, "user.rsagent") == b"v"
    doc = only(col, "setxattr", f)
    assert doc["setxattr"]["retval"] == 0
    assert_file(file_of(doc), f, f.stat())
    assert file_of(doc)["destination"] == {"name": "user.rsagent", "namespace": "user"}
    if variant == "setxattrat":
        assert doc["setxattr"]["flags"] == 1


@pytest.mark.parametrize("variant", ["removexattr", "lremovexattr", "fremovexattr", "removexattrat"])
def test_removexattr_variants(tracer, tree: Path, variant: str) -> None:
    f = tree / "f"
    os.setxattr(f, "trusted.rsagent", b"v")
    with tracer.collect() as col:
        if variant == "removexattr":
            ok("removexattr", f, "trusted.rsagent")
        elif variant == "lremovexattr":
            ok("lremovexattr", f, "trusted.rsagent")
        elif variant == "fremovexattr":
            _with_fd(f, lambda fd: ok("fremovexattr", fd, "trusted.rsagent"))
        else:
            _with_dirfd(tree, lambda fd: ok("removexattrat", fd, "f", 0, "trusted.rsagent"))
    doc = only(col, "removexattr", f)
    assert doc["removexattr"]["retval"] == 0
    assert_file(file_of(doc), f, f.stat())
    assert file_of(doc)["destination"] == {"name": "trusted.rsagent", "namespace": "trusted"}


def test_removexattr_failure(tracer, tree: Path) -> None:
    f = tree / "f"
    with tracer.collect() as col:
        assert syscall("removexattr", f, "user.absent") == -ENODATA
    doc = only(col, "removexattr", f)
    assert doc["removexattr"]["retval"] == -ENODATA
    assert file_of(doc)["path_source"] == "user"
    assert file_of(doc)["destination"]["name"] == "user.absent"


def test_setxattr_failure(tracer, tree: Path) -> None:
    missing = tree / "missing"
    with tracer.collect() as col:
        assert syscall("lsetxattr", missing, "user.k", b"v", 1, 0) == -ENOENT
    doc = only(col, "setxattr", missing)
    assert doc["setxattr"]["retval"] == -ENOENT
    assert file_of(doc)["path_source"] == "user"
    assert file_of(doc)["destination"] == {"name": "user.k", "namespace": "user"}

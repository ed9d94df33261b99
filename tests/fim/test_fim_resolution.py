"""User-space resolution for file-integrity events, without the kernel:
the caller's string against a kernel-walked base and root (symlinks, `..`,
chroot), placing filesystem-relative paths on mounts (bind mounts), the mount
table's memory of removed mounts, user/group names refreshed on change, and
which programs each event type loads."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent.hooksets import TRACEPOINT
from agent.mounts import Mount, MountTable
from agent.paths import resolve_user_path
from agent.users import UserNames


def _r(root: Path | str, base: Path | str, path: str, follow: bool = True) -> bytes:
    return resolve_user_path(os.fsencode(root), os.fsencode(base), path.encode(), follow_last=follow)


def test_lexical_parts(tmp_path: Path) -> None:
    assert _r("/", tmp_path, "a//./b/../c") == os.fsencode(tmp_path / "a" / "c")
    assert _r("/", tmp_path, "/../../x") == b"/x"
    assert _r("/", "/", "") == b"/"


def test_symlinks_are_followed_before_dotdot(tmp_path: Path) -> None:
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real" / "deep")
    assert _r("/", tmp_path, "link/../x") == os.fsencode(tmp_path / "real" / "x")
    (tmp_path / "rel").symlink_to("real/deep")
    assert _r("/", tmp_path, "rel/y") == os.fsencode(tmp_path / "real" / "deep" / "y")


def test_last_component_follows_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("t")
    (tmp_path / "ln").symlink_to("target")
    assert _r("/", tmp_path, "ln", follow=True) == os.fsencode(tmp_path / "target")
    assert _r("/", tmp_path, "ln", follow=False) == os.fsencode(tmp_path / "ln")


def test_chroot_bounds_dotdot_and_absolute_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "jail"
    (root / "etc").mkdir(parents=True)
    (root / "pw").symlink_to("/etc/passwd")
    assert _r(root, root, "/pw") == os.fsencode(root / "etc" / "passwd")
    assert _r(root, root / "etc", "../../../../etc/x") == os.fsencode(root / "etc" / "x")


def test_symlink_loops_stop(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    out = _r("/", tmp_path, "a/x")
    assert out.startswith(os.fsencode(tmp_path))


def _mountinfo(tmp_path: Path, lines: list[str]) -> MountTable:
    p = tmp_path / "mountinfo"
    p.write_text("".join(line + "\n" for line in lines))
    return MountTable(p)


def test_locate_single_and_bind_mounts(tmp_path: Path) -> None:
    t = _mountinfo(tmp_path, [
        "27 1 254:0 / / rw - ext4 /dev/vda rw",
        "60 27 254:0 /srv/data /mnt/data rw - ext4 /dev/vda rw",
        "61 27 0:50 / /mnt/t rw - tmpfs t rw",
    ])
    dev = (254 << 20) | 0
    one = t.locate((0 << 20) | 50, b"/x", None)
    assert one is not None and (one.path, one.mount.mount_id, one.ambiguous) == (b"/mnt/t/x", 61, False)
    # Outside the bind mount's root: only the root mount shows it.
    only_root = t.locate(dev, b"/etc/shadow", b"/etc/shadow")
    assert only_root is not None and (only_root.path, only_root.ambiguous) == (b"/etc/shadow", False)
    # Inside: both; the caller's string decides.
    via_bind = t.locate(dev, b"/srv/data/f", b"/mnt/data/f")
    assert via_bind is not None and (via_bind.path, via_bind.mount.mount_id, via_bind.ambiguous) == (
        b"/mnt/data/f", 60, True)
    direct = t.locate(dev, b"/srv/data/f", b"/srv/data/f")
    assert direct is not None and direct.path == b"/srv/data/f"
    # No hint: the shortest mount point.
    nohint = t.locate(dev, b"/srv/data", None)
    assert nohint is not None and nohint.path == b"/srv/data"
    assert t.locate((9 << 20) | 9, b"/x", None) is None


def test_top_at_stacked_mounts_and_containing(tmp_path: Path) -> None:
    t = _mountinfo(tmp_path, [
        "27 1 254:0 / / rw - ext4 /dev/vda rw",
        "70 27 0:51 / /mnt rw - tmpfs a rw",
        "65 70 0:52 / /mnt rw - tmpfs b rw",   # stacked on 70, lower id
    ])
    top = t.top_at(b"/mnt")
    assert top is not None and top.mount_id == 65
    inside = t.containing(b"/mnt/x/y")
    assert inside is not None and inside.mount_id == 65
    root = t.containing(b"/mntx")
    assert root is not None and root.mount_id == 27


def test_removed_mounts_stay_findable(tmp_path: Path) -> None:
    p = tmp_path / "mountinfo"
    p.write_text("27 1 254:0 / / rw - ext4 /dev/vda rw\n80 27 0:60 / /m rw - tmpfs x rw\n")
    t = MountTable(p)
    p.write_text("27 1 254:0 / / rw - ext4 /dev/vda rw\n")
    t.refresh()
    assert t.top_at(b"/m") is None
    gone = t.removed_at(b"/m")
    assert gone is not None and gone.mount_id == 80 and t.get(80) == gone
    t.remember(Mount(81, 0, 0, 61, b"", b"/n", "tmpfs", b"y"))
    assert t.removed_at(b"/n") is not None


def test_user_names_reload_when_the_files_change(tmp_path: Path) -> None:
    passwd, group = tmp_path / "passwd", tmp_path / "group"
    passwd.write_text("root:x:0:0::/root:/bin/sh\n")
    group.write_text("root:x:0:\n")
    names = UserNames(passwd, group)
    assert names.user(0) == "root" and names.user(4242) == ""
    passwd.write_text("root:x:0:0::/root:/bin/sh\nnewbie:x:4242:4242::/:/bin/sh\n")
    group.write_text("root:x:0:\nnewbies:x:4242:\n")
    time.sleep(0.06)
    assert names.user(4242) == "newbie"
    assert names.group(4242) == "newbies"


@pytest.mark.parametrize("event_type", ["chmod", "chown", "mkdir", "rmdir", "unlink", "rename", "link",
                                        "utimes", "setxattr", "removexattr"])
def test_path_based_types_load_the_ctime_hooks(event_type: str) -> None:
    progs = TRACEPOINT.programs_for({event_type})
    assert {"rs_ctime_ns_xchg", "rs_ctime_xchg_skip", "rs_inode_set_ctime"} <= set(progs)
    assert any(p.startswith("rs_exit_") for p in progs)


def test_other_types_do_not_load_the_ctime_hooks() -> None:
    progs = TRACEPOINT.programs_for({"open", "mount", "umount", "exec", "fork", "exit"})
    assert not [p for p in progs if "ctime" in p]

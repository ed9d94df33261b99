"""The event-type table and what is generated from it (codegen/tablegen.py)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from codegen import eventtypes as et
from codegen import tablegen


def test_generated_files_are_current() -> None:
    assert tablegen.main(["--check"]) == 0, "run python -m codegen.tablegen"


def test_check_fails_on_a_stale_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table change the committed files do not reflect is caught."""
    chmod = et.BY_NAME["chmod"]
    fewer = dataclasses.replace(chmod, syscalls=chmod.syscalls[:-1])
    monkeypatch.setattr(et, "PRODUCED", tuple(fewer if t is chmod else t for t in et.PRODUCED))
    assert tablegen.main(["--check"]) == 1


def test_syscall_numbers_come_from_the_kernel_headers() -> None:
    data = tablegen.kconsts()
    assert "linux-libc-dev" in data["packages"]
    # a few numbers every x86-64 kernel agrees on
    assert tablegen.syscall_nr("openat") == 257 and tablegen.syscall_nr("unlinkat") == 263
    with pytest.raises(tablegen.TableError, match="not in the kernel's asm/unistd_64.h"):
        tablegen.syscall_nr("no_such_syscall")
    header = tablegen.EVENTS_H.read_text()
    for t in et.PRODUCED:
        for s in t.syscalls:
            assert f"#define RS_NR_{s.name} {tablegen.syscall_nr(s.name)}\n" in header


def test_one_wrapper_per_syscall_on_its_tracepoint() -> None:
    exits = tablegen.EXITS_H.read_text()
    sections = re.findall(r'SEC\("tracepoint/(syscalls/sys_exit_\w+)"\)\nint (rs_exit_\w+)\(', exits)
    expected = [(s.exit_tracepoint, s.program) for t in sorted(et.PRODUCED, key=lambda t: t.id or 0)
                for s in t.syscalls]
    assert sections == expected


def test_roles_become_assignments() -> None:
    """fchownat(dirfd, path, uid, gid, flags): each argument where its role says."""
    exits = tablegen.EXITS_H.read_text()
    body = exits.split("int rs_exit_fchownat(", 1)[1].split("}", 1)[0]
    assert "c.dirfd = (int)r.a[0];" in body and "c.path = (const char *)r.a[1];" in body
    assert "c.uid = r.a[2];" in body and "c.gid = r.a[3];" in body and "c.at_flags = r.a[4];" in body
    # unlinkat(AT_REMOVEDIR) is an rmdir
    unlinkat = exits.split("int rs_exit_unlinkat(", 1)[1].split("}", 1)[0]
    assert "if (r.a[2] & RS_AT_REMOVEDIR)\n\t\tc.type = RS_EVENT_RMDIR;" in unlinkat


def test_table_invariants_hold() -> None:
    names = [s.name for t in et.PRODUCED for s in t.syscalls]
    assert len(names) == len(set(names))
    for t in et.PRODUCED:
        assert t.record is not None and (t.syscalls or t.programs), t.name
    assert [s.name for s in et.syscalls_of(et.BY_NAME["rmdir"])] == ["rmdir", "unlinkat"]


def test_cgroup_write_entry_gives_its_fields_program_and_enum() -> None:
    """One table entry (issue 17): the SECL fields, the tracepoint it needs,
    its enum value and the write syscalls its program recognizes."""
    from codegen.fields import REGISTRY

    t = et.BY_NAME["cgroup_write"]
    assert t.programs == ("rs_cgroup_attach_task",) and t.requires_tracepoints == ("cgroup/cgroup_attach_task",)
    pid = REGISTRY.get("cgroup_write.pid")
    assert pid is not None and pid.type.name == "INT" and pid.event_type == "cgroup_write" and not pid.array
    for name in ("file.path", "file.name", "file.inode", "file.filesystem", "file.mount_id"):
        f = REGISTRY.get(f"cgroup_write.{name}")
        assert f is not None and f.event_type == "cgroup_write", name
    assert REGISTRY.get("cgroup_write.retval") is None   # recorded before the write returns
    block = tablegen.events_block()
    assert f"RS_EVENT_CGROUP_WRITE = {t.id}," in block
    for nr in ("write", "writev", "pwrite64", "pwritev", "pwritev2"):
        assert f"#define RS_NR_{nr} {tablegen.syscall_nr(nr)}" in block

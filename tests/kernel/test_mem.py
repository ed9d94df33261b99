"""mmap and mprotect events from the real calls: protection and flags, the
file of a file-backed mapping, the mapping's protection before an
mprotect (the transition to executable memory), failures (-errno)."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import pytest
from kutil import PAGE, assert_context, mine, mmap_raw, mprotect_raw, munmap_raw

from codegen.constants import lookup

pytestmark = pytest.mark.root

R, W, X = mmap.PROT_READ, mmap.PROT_WRITE, mmap.PROT_EXEC
PRIVATE, SHARED, ANON = mmap.MAP_PRIVATE, mmap.MAP_SHARED, mmap.MAP_ANONYMOUS
EBADF, EINVAL = 9, 22


def _vm(name: str) -> int:
    v = lookup(name)
    assert v is not None
    return v


def _at(col, event_type: str, addr: int) -> dict:
    docs = [d for d in mine(col, event_type) if d[event_type]["address"] == addr]
    assert len(docs) == 1, [d[event_type] for d in mine(col, event_type)]
    return docs[0]


def test_anonymous_mapping(tracer) -> None:
    with tracer.collect() as col:
        addr = mmap_raw(2 * PAGE, R | W, PRIVATE | ANON)
    assert addr > 0
    try:
        doc = [d for d in mine(col, "mmap") if d["mmap"]["retval"] == addr]
        assert len(doc) == 1
        assert_context(doc[0])
        m = doc[0]["mmap"]
        assert m["protection"] == R | W and m["flags"] == PRIVATE | ANON
        assert m["length"] == 2 * PAGE and m["fd"] == -1
        assert "file" not in m
    finally:
        munmap_raw(addr, 2 * PAGE)


def test_file_backed_executable_mapping_names_its_file(tracer, tmp_path: Path) -> None:
    f = tmp_path / "lib.so"
    f.write_bytes(b"\0" * PAGE)
    fd = os.open(f, os.O_RDONLY)
    try:
        with tracer.collect() as col:
            addr = mmap_raw(PAGE, R | X, PRIVATE, fd)
        assert addr > 0
    finally:
        os.close(fd)
    doc = [d for d in mine(col, "mmap") if d["mmap"]["retval"] == addr][0]
    m = doc["mmap"]
    assert m["protection"] == R | X and m["flags"] == PRIVATE and m["fd"] == fd
    st = f.stat()
    assert m["file"]["path"] == str(f) and m["file"]["inode"] == st.st_ino and m["file"]["name"] == "lib.so"


def test_failed_mmap_reports_negative_errno(tracer) -> None:
    with tracer.collect() as col:
        rc = mmap_raw(PAGE, R, PRIVATE, 987654)
    assert rc == -EBADF
    doc = [d for d in mine(col, "mmap") if d["mmap"]["fd"] == 987654][0]
    assert doc["mmap"]["retval"] == -EBADF and "file" not in doc["mmap"]


def test_writable_memory_made_executable(tracer) -> None:
    """The transition an injected payload makes: RW anonymous memory -> RX."""
    addr = mmap_raw(PAGE, R | W, PRIVATE | ANON)
    assert addr > 0
    with tracer.collect() as col:
        assert mprotect_raw(addr, PAGE, R | X) == 0
    doc = _at(col, "mprotect", addr)
    assert_context(doc)
    m = doc["mprotect"]
    assert m["retval"] == 0 and m["req_protection"] == R | X
    vm = m["vm_protection"]
    assert vm & _vm("VM_WRITE") and vm & _vm("VM_READ") and not vm & _vm("VM_EXEC")
    assert "file" not in m     # anonymous
    assert m["vm_source"] in ("find_vma", "security_file_mprotect")


def test_mprotect_of_a_file_mapping_names_the_file(tracer, tmp_path: Path) -> None:
    f = tmp_path / "data.bin"
    f.write_bytes(b"\0" * PAGE)
    fd = os.open(f, os.O_RDWR)
    addr = mmap_raw(PAGE, R, SHARED, fd)
    os.close(fd)
    assert addr > 0
    with tracer.collect() as col:
        assert mprotect_raw(addr, PAGE, R | W) == 0
    m = _at(col, "mprotect", addr)["mprotect"]
    assert m["file"]["path"] == str(f) and m["file"]["inode"] == f.stat().st_ino
    assert m["vm_protection"] & _vm("VM_SHARED") and not m["vm_protection"] & _vm("VM_WRITE")


def test_failed_mprotect(tracer) -> None:
    with tracer.collect() as col:
        assert mprotect_raw(PAGE + 1, PAGE, R) == -EINVAL   # unaligned
    m = _at(col, "mprotect", PAGE + 1)["mprotect"]
    assert m["retval"] == -EINVAL and m["req_protection"] == R
    assert "vm_protection" not in m      # no mapping was found

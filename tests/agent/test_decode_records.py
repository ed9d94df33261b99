"""Decoding and resolving records recorded from the kernel (tests/agent/
records/, re-encoded for the current events.h by recorded.encode): pure
Python, no root, no BPF. Regenerate the fixtures with
``python tests/agent/recorded.py`` (root)."""

from __future__ import annotations

from typing import Any

import pytest
from recorded import encode, load

from agent.clock import BootClock
from agent.events.decode import (
    ActivityRecord, BpfRecord, Decoder, ExecRecord, ExitRecord, FileRecord, ForkRecord, IoUringRecord, MemRecord,
)
from agent.events.layout import layout
from agent.events.resolve import ResolveEnv, Resolver
from agent.mounts import MountTable
from agent.process.cache import ProcessCache
from agent.users import UserNames


@pytest.fixture
def decoder() -> Decoder:
    return Decoder(layout())


def _decode(decoder: Decoder, name: str) -> object:
    raw = encode(load(name))
    ffi = layout().ffi
    rec = decoder.decode(ffi.from_buffer(raw), len(raw))
    assert rec is not None, dict(decoder.errors)
    return rec


def test_exec_record(decoder: Decoder) -> None:
    rec = _decode(decoder, "exec")
    assert isinstance(rec, ExecRecord)
    assert rec.hdr.type == "exec" and rec.hdr.pid == rec.hdr.tid
    assert rec.argv == ("/usr/bin/true", "recorded-exec") and rec.argc == 2
    assert rec.filename == b"/usr/bin/true"
    assert rec.file.path == b"/usr/bin/true" and rec.file.inode and rec.file.flags & layout().const("RS_FILE_PRESENT")
    assert rec.task.comm == "true" and rec.envp is None


def test_fork_and_exit_records(decoder: Decoder) -> None:
    fork = _decode(decoder, "fork")
    assert isinstance(fork, ForkRecord)
    assert fork.child_pid == fork.hdr.pid and fork.parent_pid != fork.child_pid
    assert fork.child_start_time >= fork.parent_start_time
    exit_ = _decode(decoder, "exit")
    assert isinstance(exit_, ExitRecord) and exit_.hdr.type == "exit"


def test_file_records(decoder: Decoder) -> None:
    opened = _decode(decoder, "open_created")
    assert isinstance(opened, FileRecord) and opened.hdr.type == "open"
    assert opened.file.path.endswith(b"/fixture-file") and opened.retval >= 0
    assert opened.flags & 0o100  # O_CREAT: Path.write_text creates it
    rename = _decode(decoder, "rename")
    assert isinstance(rename, FileRecord)
    assert rename.file.path.endswith(b"/fixture-file") and rename.dest.path.endswith(b"/renamed-file")
    failed = _decode(decoder, "unlink_failed")
    assert isinstance(failed, FileRecord)
    assert failed.retval == -2 and failed.req_path.endswith(b"/missing-file")
    assert not failed.file.flags & layout().const("RS_FILE_PRESENT")


def test_activity_records(decoder: Decoder) -> None:
    sig = _decode(decoder, "signal")
    assert isinstance(sig, ActivityRecord) and sig.hdr.type == "signal"
    assert sig.target is not None and sig.target.pid != sig.hdr.pid and sig.target.task.comm == "sleep"
    assert sig.args[1] == 15 and sig.retval == 0  # SIGTERM, delivered
    memfd = _decode(decoder, "memfd_create")
    assert isinstance(memfd, ActivityRecord) and memfd.str == b"recorded-memfd" and memfd.retval >= 0
    assert memfd.file.path.endswith(b"memfd:recorded-memfd") and memfd.file.inode
    chdir = _decode(decoder, "chdir_failed")
    assert isinstance(chdir, ActivityRecord) and chdir.retval == -2
    assert chdir.str.endswith(b"/missing-dir") and not chdir.file.flags & layout().const("RS_FILE_PRESENT")


def test_kernel_type_records(decoder: Decoder) -> None:
    c = layout().const
    mapped = _decode(decoder, "mmap_file")
    assert isinstance(mapped, MemRecord) and mapped.hdr.type == "mmap"
    assert mapped.file.path.endswith(b"/mapped-file") and mapped.file.inode and mapped.fd >= 0
    assert mapped.prot == 1 and mapped.retval > 0 and mapped.length == 4096      # PROT_READ, the address
    prot = _decode(decoder, "mprotect")
    assert isinstance(prot, MemRecord) and prot.hdr.type == "mprotect" and prot.retval == 0
    assert prot.prot == 5 and prot.mem_flags & c("RS_MEM_VMA") and prot.pkey == -1
    assert prot.vm_flags & 3 == 3 and not prot.vm_flags & 4       # VM_READ | VM_WRITE, not VM_EXEC, before
    bpf = _decode(decoder, "bpf_map_create")
    assert isinstance(bpf, BpfRecord) and bpf.cmd == 0 and bpf.retval >= 0          # BPF_MAP_CREATE
    assert bpf.map_name == "recorded_map" and bpf.map_type == 2 and bpf.map_id       # the kernel's map
    assert bpf.bpf_flags & c("RS_BPF_MAP_KERNEL") and bpf.helpers == ()
    ring = _decode(decoder, "io_uring_setup")
    assert isinstance(ring, IoUringRecord) and ring.action == c("RS_IOU_SETUP")
    assert ring.entries == 4 and ring.op == -1 and ring.retval >= 0 and ring.req_path == b""


def test_resolving_recorded_records_needs_no_root() -> None:
    """Decode, then resolve against user-space state only (a process cache
    that never saw the process: the record's task context stands in)."""
    decoder = Decoder(layout())
    clock = BootClock()
    res = Resolver(ResolveEnv(clock, ProcessCache(clock), UserNames(), MountTable()))
    docs: dict[str, dict[str, Any]] = {}
    for name in ("exec", "fork", "exit", "open_created", "rename", "unlink_failed", "chmod", "signal",
                 "memfd_create", "chdir_failed", "mmap_file", "mprotect", "bpf_map_create", "io_uring_setup"):
        raw = encode(load(name))
        rec = decoder.decode(layout().ffi.from_buffer(raw), len(raw))
        assert rec is not None
        doc = res.resolve(rec)
        assert doc is not None, dict(res.errors)
        docs[name] = doc
    assert docs["exec"]["exec"]["file"]["path"] == "/usr/bin/true"
    assert docs["exec"]["process"]["argv"] == ["/usr/bin/true", "recorded-exec"]
    failed = docs["unlink_failed"]["unlink"]
    assert failed["retval"] == -2 and failed["file"]["path"].endswith("/missing-file")
    assert failed["file"]["path_source"] == "user" and "inode" not in failed["file"]
    assert docs["rename"]["rename"]["file"]["destination"]["path"].endswith("/renamed-file")
    assert docs["chmod"]["chmod"]["file"]["destination"]["mode"] == 0o640
    signal = docs["signal"]["signal"]
    assert signal["type"] == 15 and signal["target"]["comm"] == "sleep" and signal["pid"] == signal["target"]["pid"]
    memfd = docs["memfd_create"]["memfd_create"]
    assert memfd["name"] == "recorded-memfd" and memfd["file"]["path"] == "memfd:recorded-memfd"
    assert memfd["file"]["is_memfd"] and memfd["flags"] == 1
    chdir = docs["chdir_failed"]["chdir"]
    assert chdir["retval"] == -2 and chdir["file"]["path"].endswith("/missing-dir")
    assert chdir["file"]["path_source"] == "user"
    mapped = docs["mmap_file"]["mmap"]
    assert mapped["file"]["path"].endswith("/mapped-file") and mapped["protection"] == 1
    prot = docs["mprotect"]["mprotect"]
    assert prot["req_protection"] == 5 and prot["vm_source"] == "find_vma" and "file" not in prot
    bpf = docs["bpf_map_create"]["bpf"]
    assert bpf["map"]["name"] == "recorded_map" and bpf["map"]["source"] == "kernel" and "prog" not in bpf
    ring = docs["io_uring_setup"]["io_uring"]
    assert ring["action"] == "setup" and ring["entries"] == 4 and "file" not in ring


def test_a_record_cut_short_is_counted_not_decoded(decoder: Decoder) -> None:
    raw = encode(load("exec"))
    ffi = layout().ffi
    short = raw[: layout().sizeof("struct rs_exec_event") - 8]
    assert decoder.decode(ffi.from_buffer(short), len(short)) is None
    assert decoder.errors["size beyond record"] + decoder.errors["exec: short record"] == 1

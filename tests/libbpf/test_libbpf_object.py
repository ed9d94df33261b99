"""Loading, globals, attaching and roll-back on the real kernel (as root)."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from libbpf_testutil import bpf_prog_names, open_fds

from agent.libbpf import (
    BpfError,
    BpfObject,
    NotSupportedError,
    RingBuffer,
    VerifierError,
    load_object,
    record_bytes,
    try_load,
)

pytestmark = [pytest.mark.clang, pytest.mark.root]


def drain(obj: BpfObject) -> list[bytes]:
    got: list[bytes] = []
    with RingBuffer(obj.maps["events"], lambda data, size: got.append(record_bytes(data, size))) as rb:
        rb.consume()
    return got


def test_set_global_filters_by_pid(bpf_objects: dict[str, Path]) -> None:
    """target_pid is a const volatile: this process sees records, another pid none."""
    for pid, expected in ((os.getpid(), 3), (1, 0)):
        with load_object(bpf_objects["ringbuf_pid"], variables={"target_pid": pid, "magic": 7}, attach=True) as obj:
            for _ in range(3):
                os.getppid()
            records = drain(obj)
            assert len(records) == expected
            assert obj.get_global_int("hits") == expected


def test_records_decode_through_the_shared_header(rb_obj: BpfObject, event_ffi: Any) -> None:
    seen = []

    def on_event(data: Any, size: int) -> None:
        e = event_ffi.cast("struct rb_event *", data)  # a pointer from another FFI instance
        seen.append((size, e.pid, e.tid, e.magic, e.seq, bytes(e.tag).rstrip(b"\0")))

    with RingBuffer(rb_obj.maps["events"], on_event) as rb:
        os.getppid()
        os.getppid()
        assert rb.poll(1000) == 2
    assert event_ffi.sizeof("struct rb_event") == 64
    assert seen == [(64, os.getpid(), os.getpid(), 0xFEEDFACE, i, b"pytest") for i in range(2)]


def test_set_global_errors(bpf_objects: dict[str, Path]) -> None:
    with BpfObject(bpf_objects["ringbuf_pid"]) as obj:
        with pytest.raises(KeyError, match="no global variable 'nope'"):
            obj.set_global("nope", 1)
        with pytest.raises(ValueError, match="does not fit"):
            obj.set_global("target_pid", 1 << 32)
        with pytest.raises(ValueError, match="3 byte"):
            obj.set_global("magic", b"abc")
        with pytest.raises(TypeError):
            obj.set_global("tag", 5)
        obj.set_global("magic", (42).to_bytes(8, sys.byteorder))
        assert obj.get_global_int("magic") == 42
        obj.load()
        with pytest.raises(BpfError) as info:
            obj.set_global("target_pid", 1)
        assert info.value.errno == errno.EPERM and info.value.op == "set global target_pid"
        assert obj.get_global_int("magic") == 42  # .rodata stays readable


def test_set_global_after_load_writes_the_live_map(rb_obj: BpfObject) -> None:
    os.getppid()
    assert rb_obj.get_global_int("hits") == 1
    rb_obj.set_global("enabled", 0)  # .data, written through the map's mmap
    os.getppid()
    assert rb_obj.get_global_int("hits") == 1
    rb_obj.set_global("enabled", 1)
    os.getppid()
    assert rb_obj.get_global_int("hits") == 2
    assert rb_obj.maps[".data"].lookup(0) == (1).to_bytes(4, sys.byteorder)


def test_autoload_chooses_programs(bpf_objects: dict[str, Path]) -> None:
    with BpfObject(bpf_objects["kinds"]) as obj:
        obj.set_autoload(["kinds_tp"])
        assert [p.name for p in obj.programs.values() if p.autoload] == ["kinds_tp"]
        obj.load()
        assert obj.programs["kinds_tp"].fd >= 0
        with pytest.raises(BpfError, match="not loaded"):
            _ = obj.programs["kinds_raw_tp"].fd
        assert [link.program for link in obj.attach_all()] == ["kinds_tp"]
        with pytest.raises(KeyError):
            obj.set_autoload(["typo"])


def test_attach_each_kind_and_detach(bpf_objects: dict[str, Path]) -> None:
    counters = ("tp_hits", "tp_btf_hits", "raw_tp_hits")
    with load_object(bpf_objects["kinds"], variables={"target_pid": os.getpid()}) as obj:
        links = obj.attach_all()
        assert sorted(link.program for link in links) == ["kinds_raw_tp", "kinds_tp", "kinds_tp_btf"]
        for _ in range(5):
            os.getppid()
        assert [obj.get_global_int(c) for c in counters] == [5, 5, 5]
        links[0].detach()
        assert links[0].closed
        os.getppid()
        hits = [obj.get_global_int(c) for c in counters]
        assert sorted(hits) == [5, 6, 6]
    assert all(link.closed for link in links)  # the object closed the rest


def test_resize_map_before_load(bpf_objects: dict[str, Path]) -> None:
    with BpfObject(bpf_objects["ringbuf_pid"]) as obj:
        obj.maps["hash_map"].max_entries = 1000
        obj.maps["events"].set_max_entries(1 << 20)
        obj.load()
        assert obj.maps["hash_map"].info().max_entries == 1000
        assert obj.maps["events"].info().max_entries == 1 << 20
        with pytest.raises(BpfError) as info:
            obj.maps["hash_map"].max_entries = 10
        assert info.value.op == "map resize hash_map" and info.value.errno == errno.EBUSY


def test_verifier_rejection_raises_verifier_error(bpf_objects: dict[str, Path]) -> None:
    before = open_fds()
    obj = BpfObject(bpf_objects["verifier_reject"])
    with pytest.raises(VerifierError) as info:
        obj.load()
    err = info.value
    assert (err.program, err.op, err.errno) == ("vr_bad", "load program vr_bad", errno.EACCES)
    assert "invalid mem access 'map_value_or_null'" in err.short
    assert "bpf_map_lookup_elem" in err.log and "processed" in err.log  # the full log
    assert str(err).startswith("load object verifier_reject.bpf.o: program vr_bad: permission denied (errno 13): ")
    assert obj.closed  # a failed load rolls back: the object is closed
    assert open_fds() == before


def test_fentry_is_not_supported_and_leaves_nothing(bpf_objects: dict[str, Path]) -> None:
    before = open_fds()
    with pytest.raises(NotSupportedError) as info:
        load_object(bpf_objects["fentry"], attach=True)
    err = info.value
    assert err.errno == errno.EPERM and "fentry" in err.feature
    assert err.op == "load program fe_nanosleep"
    assert str(err).startswith("load object fentry.bpf.o: program fe_nanosleep: fentry programs not supported")
    assert open_fds() == before
    assert not {"fe_ok", "fe_nanosleep"} & bpf_prog_names()


def test_partial_attach_rolls_back(bpf_objects: dict[str, Path]) -> None:
    """The 3rd of 5 attaches fails: links 1-2 destroyed, object closed, then the error."""
    before = open_fds()
    obj = BpfObject(bpf_objects["rollback"])
    obj.load()
    assert {"rbk_p1", "rbk_p2"} <= bpf_prog_names()
    with pytest.raises(BpfError) as info:
        obj.attach_all(["rbk_p1", "rbk_p2", "rbk_p3", "rbk_p4", "rbk_p5"])
    assert (info.value.op, info.value.errno) == ("attach program rbk_p3", errno.ENOENT)
    assert not isinstance(info.value, NotSupportedError)
    assert obj.closed
    assert open_fds() == before
    assert not {f"rbk_p{i}" for i in range(1, 6)} & bpf_prog_names()  # no link keeps a program alive


def test_load_object_rolls_back_attach(bpf_objects: dict[str, Path]) -> None:
    before = open_fds()
    with pytest.raises(BpfError, match="attach program rbk_p3"):
        load_object(bpf_objects["rollback"], attach=True)
    assert open_fds() == before
    assert not {f"rbk_p{i}" for i in range(1, 6)} & bpf_prog_names()


def test_single_attach_failure_keeps_the_object(bpf_objects: dict[str, Path]) -> None:
    with load_object(bpf_objects["rollback"]) as obj:
        with pytest.raises(BpfError):
            obj.attach("rbk_p3")
        with obj.attach("rbk_p1") as link:
            assert link.fd >= 0 and not obj.closed
        assert link.closed


def test_link_pin_outlives_the_link_object(bpf_objects: dict[str, Path]) -> None:
    pin = Path(f"/sys/fs/bpf/rsa_test_link_{os.getpid()}")
    with load_object(bpf_objects["kinds"], variables={"target_pid": os.getpid()}, programs=["kinds_tp"]) as obj:
        link = obj.attach("kinds_tp")
        link.pin(pin)
        try:
            assert pin.exists()
        finally:
            link.unpin()
        assert not pin.exists()
        os.getppid()
        assert obj.get_global_int("tp_hits") == 1


def test_use_after_close_raises(bpf_objects: dict[str, Path]) -> None:
    obj = load_object(bpf_objects["ringbuf_pid"])
    link = obj.attach("handle_getppid")
    obj.close()
    obj.close()  # idempotent
    assert link.closed
    for action in (obj.load, lambda: obj.maps["hash_map"].fd, lambda: obj.attach("handle_getppid")):
        with pytest.raises(BpfError) as info:
            action()
        assert info.value.errno == errno.EBADF


def test_try_load(bpf_objects: dict[str, Path]) -> None:
    ok = try_load(bpf_objects["kinds"], "kinds_tp_btf")
    assert (ok.ok, ok.errno) == (True, 0)
    fentry = try_load(bpf_objects["fentry"], "fe_nanosleep")
    assert (fentry.ok, fentry.errno, fentry.stage) == (False, errno.EPERM, "load")
    assert isinstance(fentry.error, NotSupportedError)
    assert try_load(bpf_objects["fentry"], "fe_ok").ok  # autoload: only the named program
    bogus = try_load(bpf_objects["rollback"], "rbk_p3")
    assert (bogus.ok, bogus.errno, bogus.stage) == (False, errno.ENOENT, "attach")
    assert try_load(bpf_objects["rollback"], "rbk_p3", attach=False).ok
    assert "rbk_p3" not in bpf_prog_names()


def test_no_fd_leak_over_200_cycles(bpf_objects: dict[str, Path]) -> None:
    path = bpf_objects["ringbuf_pid"]
    with load_object(path, variables={"target_pid": os.getpid()}, attach=True) as warm:
        drain(warm)  # first-use allocations (logging, caches) happen before counting
    before = open_fds()
    for i in range(200):
        with BpfObject(path) as obj:
            obj.set_global("target_pid", os.getpid())
            obj.load()
            if i % 10 == 0:
                obj.attach_all()
                RingBuffer(obj.maps["events"], lambda data, size: None)  # closed by the object
                obj.maps["hash_map"][1] = 2
    assert open_fds() == before

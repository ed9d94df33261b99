"""Ring-buffer consumption: poll/consume, callbacks, timeouts, errors."""

from __future__ import annotations

import errno
import os
import select
import time
from pathlib import Path
from typing import Any

import pytest

from agent.libbpf import BpfError, BpfObject, RingBuffer, load_object, record_bytes

pytestmark = [pytest.mark.clang, pytest.mark.root]


def test_poll_times_out_without_records(rb_obj: BpfObject) -> None:
    with RingBuffer(rb_obj.maps["events"], lambda data, size: None) as rb:
        start = time.monotonic()
        assert rb.poll(150) == 0
        assert time.monotonic() - start >= 0.12
        assert rb.consume() == 0


def test_poll_wakes_up_on_records(rb_obj: BpfObject) -> None:
    sizes: list[int] = []
    with RingBuffer(rb_obj.maps["events"], lambda data, size: sizes.append(size)) as rb:
        r, _, _ = select.select([rb.fileno()], [], [], 0)
        assert r == []
        os.getppid()
        r, _, _ = select.select([rb.fileno()], [], [], 1.0)
        assert r == [rb.fileno()]
        assert rb.poll(1000) == 1
    assert sizes == [64]


def test_wait_consumes_nothing(rb_obj: BpfObject) -> None:
    sizes: list[int] = []
    with RingBuffer(rb_obj.maps["events"], lambda data, size: sizes.append(size)) as rb:
        start = time.monotonic()
        assert rb.wait(150) is False
        assert time.monotonic() - start >= 0.12
        os.getppid()
        assert rb.wait(1000) is True
        assert sizes == []          # waiting read nothing
        assert rb.consume() == 1
        assert rb.wait(0) is False
    assert sizes == [64]


def test_record_bytes_copies_out(rb_obj: BpfObject) -> None:
    kept: list[bytes] = []
    with RingBuffer(rb_obj.maps["events"], lambda data, size: kept.append(record_bytes(data, size))) as rb:
        for _ in range(10):
            os.getppid()
        assert rb.consume() == 10
    seqs = [int.from_bytes(r[16:24], "little") for r in kept]
    assert seqs == list(range(10))


def test_callback_exception_propagates(rb_obj: BpfObject) -> None:
    calls: list[int] = []

    def boom(data: Any, size: int) -> None:
        calls.append(size)
        if len(calls) == 2:
            raise RuntimeError("decoder bug")

    with RingBuffer(rb_obj.maps["events"], boom) as rb:
        for _ in range(4):
            os.getppid()
        with pytest.raises(RuntimeError, match="decoder bug"):
            rb.consume()
        assert len(calls) == 2
        assert rb.consume() == 2  # the record that raised is consumed, the rest remain
    assert len(calls) == 4


def test_negative_return_stops_consumption(rb_obj: BpfObject) -> None:
    seen: list[int] = []

    def first_only(data: Any, size: int) -> int:
        seen.append(size)
        return -1 if len(seen) == 1 else 0

    with RingBuffer(rb_obj.maps["events"], first_only) as rb:
        for _ in range(3):
            os.getppid()
        assert rb.consume() == -1
        assert rb.consume() == 2
    assert len(seen) == 3


def test_two_maps_in_one_ring_buffer(rb_obj: BpfObject, bpf_objects: dict[str, Path]) -> None:
    settings = {"target_pid": os.getpid(), "magic": 2}
    with load_object(bpf_objects["ringbuf_pid"], variables=settings, attach=True) as other:
        magics: list[int] = []

        def on(data: Any, size: int) -> None:
            magics.append(int.from_bytes(record_bytes(data, size)[8:16], "little"))

        with RingBuffer(rb_obj.maps["events"], on) as rb:
            rb.add(other.maps["events"], on)
            os.getppid()
            deadline = time.monotonic() + 2
            while len(magics) < 2 and time.monotonic() < deadline:
                rb.poll(100)
        assert sorted(magics) == [2, 0xFEEDFACE]


def test_ring_buffer_closes_with_its_object(bpf_objects: dict[str, Path]) -> None:
    obj = load_object(bpf_objects["ringbuf_pid"], variables={"target_pid": os.getpid()}, attach=True)
    rb = RingBuffer(obj.maps["events"], lambda data, size: None)
    obj.close()
    assert rb.closed
    with pytest.raises(BpfError) as info:
        rb.poll(0)
    assert info.value.errno == errno.EBADF


def test_ring_buffer_on_a_non_ringbuf_map_fails(rb_obj: BpfObject) -> None:
    with pytest.raises(BpfError) as info:
        RingBuffer(rb_obj.maps["hash_map"], lambda data, size: None)
    assert info.value.op == "ring buffer new hash_map" and info.value.errno == errno.EINVAL

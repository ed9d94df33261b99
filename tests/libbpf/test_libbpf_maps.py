"""Map CRUD, iteration, per-CPU values and map info on the real kernel."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.libbpf import BpfError, BpfObject, UpdateFlags, load_object

pytestmark = [pytest.mark.clang, pytest.mark.root]


def u64(n: int) -> bytes:
    return n.to_bytes(8, sys.byteorder)


def u32(n: int) -> bytes:
    return n.to_bytes(4, sys.byteorder)


@pytest.fixture
def loaded(bpf_objects: dict[str, Path]) -> Iterator[BpfObject]:
    with load_object(bpf_objects["ringbuf_pid"], variables={"target_pid": os.getpid()}) as obj:
        yield obj


def test_hash_crud(loaded: BpfObject) -> None:
    m = loaded.maps["hash_map"]
    assert m.lookup(1) is None and 1 not in m
    m.update(1, 100)
    m[u32(2)] = u64(200)
    assert m[1] == u64(100) and m.lookup(u32(2)) == u64(200)
    with pytest.raises(BpfError) as info:
        m.update(1, 5, UpdateFlags.NOEXIST)
    assert (info.value.op, info.value.errno) == ("map update hash_map", errno.EEXIST)
    assert str(info.value) == "map update hash_map: file exists (errno 17)"
    m.update(1, 101, UpdateFlags.EXIST)
    assert m[1] == u64(101)
    assert m.delete(1) is True and m.delete(1) is False
    with pytest.raises(KeyError):
        del m[1]
    with pytest.raises(KeyError):
        m[1]
    with pytest.raises(ValueError, match="key is 3 byte"):
        m.lookup(b"abc")


def test_hash_iteration(loaded: BpfObject) -> None:
    m = loaded.maps["hash_map"]
    assert list(m.keys()) == []
    for k in range(50):
        m[k] = k * k
    keys = sorted(int.from_bytes(k, sys.byteorder) for k in m)
    assert keys == list(range(50))
    items = {int.from_bytes(k, sys.byteorder): int.from_bytes(v, sys.byteorder) for k, v in m.items()}  # type: ignore[arg-type]
    assert items == {k: k * k for k in range(50)}
    for key in list(m.keys()):
        del m[key]
    assert list(m.values()) == []


def test_array_map(loaded: BpfObject) -> None:
    m = loaded.maps["array_map"]
    assert [int.from_bytes(k, sys.byteorder) for k in m.keys()] == list(range(8))
    assert m[3] == u64(0)
    m[3] = 33
    assert m[3] == u64(33)
    with pytest.raises(BpfError) as info:
        m.delete(3)  # arrays cannot delete
    assert info.value.errno == errno.EINVAL and info.value.op == "map delete array_map"
    with pytest.raises(BpfError) as info:
        m[8] = 1
    assert info.value.errno == errno.E2BIG


def test_percpu_array_values_per_cpu(loaded: BpfObject) -> None:
    ncpus = os.cpu_count() or 1
    m = loaded.maps["percpu_map"]
    assert m.is_percpu
    values = m[0]
    assert isinstance(values, list) and len(values) >= ncpus and all(v == u32(0) for v in values)
    loaded.attach("handle_getppid")
    for _ in range(7):
        os.getppid()
    after = m[0]
    assert isinstance(after, list)
    assert sum(int.from_bytes(v, sys.byteorder) for v in after) == 7
    m[1] = [u32(i + 1) for i in range(len(values))]
    assert m[1] == [u32(i + 1) for i in range(len(values))]
    with pytest.raises(ValueError, match="per-CPU value"):
        m[1] = [u32(1)] * (len(values) + 1)


def test_percpu_hash_broadcast_and_items(loaded: BpfObject) -> None:
    m = loaded.maps["percpu_hash"]
    m[5] = 9  # one value for every CPU
    [(key, values)] = list(m.items())
    assert key == u32(5) and isinstance(values, list) and set(values) == {u64(9)}


def test_map_info(loaded: BpfObject) -> None:
    info = loaded.maps["hash_map"].info()
    assert (info.type_name, info.key_size, info.value_size, info.max_entries) == ("hash", 4, 8, 128)
    assert info.name == "hash_map" and info.id > 0
    ring = loaded.maps["events"].info()
    assert (ring.type_name, ring.max_entries) == ("ringbuf", 64 * 1024)
    assert loaded.maps[".bss"].info().type_name == "array"
    assert repr(loaded.maps["hash_map"]) == "<Map hash_map hash key=4 value=8>"


def test_map_fd_needs_a_loaded_object(bpf_objects: dict[str, Path]) -> None:
    with BpfObject(bpf_objects["ringbuf_pid"]) as obj:
        with pytest.raises(BpfError) as info:
            obj.maps["hash_map"].lookup(1)
        assert info.value.errno == errno.EBADF and "not loaded" in str(info.value)

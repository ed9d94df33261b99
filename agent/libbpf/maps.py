"""A map of a BPF object: its definition before load, its contents after.

Keys and values are bytes (exactly ``key_size``/``value_size`` long) or
ints (packed to that size in host byte order). Per-CPU maps take and
return one value per possible CPU.
"""

from __future__ import annotations

import enum
import errno
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._ffi import ffi, lib
from .errors import BpfError, NotSupportedError
from .spec import MapSpec, map_spec

if TYPE_CHECKING:
    from .object import BpfObject

__all__ = ["Map", "MapInfo", "UpdateFlags"]

Buffer = bytes | bytearray | memoryview
KeyLike = Buffer | int
ValueLike = Buffer | int

_PERCPU = frozenset(
    {
        lib.BPF_MAP_TYPE_PERCPU_HASH,
        lib.BPF_MAP_TYPE_PERCPU_ARRAY,
        lib.BPF_MAP_TYPE_LRU_PERCPU_HASH,
        lib.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    }
)
_NOT_SUPPORTED = (errno.EOPNOTSUPP, 524)


class UpdateFlags(enum.IntEnum):
    ANY = lib.BPF_ANY
    NOEXIST = lib.BPF_NOEXIST
    EXIST = lib.BPF_EXIST
    LOCK = lib.BPF_F_LOCK


@dataclass(frozen=True, slots=True)
class MapInfo:
    """What the kernel reports for a loaded map (``bpf_obj_get_info_by_fd``)."""

    id: int
    type: int
    type_name: str
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int


def _pack(value: KeyLike | ValueLike, size: int, what: str, op: str) -> bytes:
    if isinstance(value, int):
        try:
            return value.to_bytes(size, sys.byteorder, signed=value < 0)
        except OverflowError:
            raise ValueError(f"{op}: {what} {value} does not fit in {size} byte(s)") from None
    data = bytes(value)
    if len(data) != size:
        raise ValueError(f"{op}: {what} is {len(data)} byte(s), the map wants {size}")
    return data


class Map:
    """One map of a :class:`BpfObject` (``obj.maps[name]``)."""

    def __init__(self, owner: BpfObject, ptr: Any, name: str) -> None:
        self._owner = owner
        self._ptr = ptr
        self.name = name  # the section name for internal maps (".rodata")
        self.kernel_name = ffi.string(lib.bpf_map__name(ptr)).decode()
        self.type = int(lib.bpf_map__type(ptr))
        self.key_size = int(lib.bpf_map__key_size(ptr))
        self.value_size = int(lib.bpf_map__value_size(ptr))
        self.internal = bool(lib.bpf_map__is_internal(ptr))
        self.is_percpu = self.type in _PERCPU
        self._ncpus = int(lib.libbpf_num_possible_cpus()) if self.is_percpu else 1
        # per-CPU values are laid out 8-byte aligned, one slot per possible CPU
        self._slot = (self.value_size + 7) & ~7 if self.is_percpu else self.value_size

    # -- definition (before load) -------------------------------------
    @property
    def spec(self) -> MapSpec:
        return map_spec(self._handle("map spec"), self.name)

    @property
    def type_name(self) -> str:
        return str(ffi.string(lib.libbpf_bpf_map_type_str(self.type)).decode())

    @property
    def max_entries(self) -> int:
        return int(lib.bpf_map__max_entries(self._handle("map max entries")))

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        self.set_max_entries(value)

    def set_max_entries(self, value: int) -> None:
        """Resize before load (``bpf_map__set_max_entries``)."""
        rc = lib.bpf_map__set_max_entries(self._handle("map resize"), value)
        if rc < 0:
            raise BpfError(f"map resize {self.name}", -rc, where=f"map resize {self.name} to {value}")

    def reuse(self, other: Map) -> None:
        """Before load: be ``other`` (a loaded map of the same definition, in
        another object) instead of creating a map (``bpf_map__reuse_fd``):
        both objects' programs then read and write the same kernel map."""
        rc = lib.bpf_map__reuse_fd(self._handle("map reuse"), other.fd)
        if rc < 0:
            raise BpfError(f"map reuse {self.name}", -rc, where=f"map reuse {self.name} from {other.name}")

    @property
    def fd(self) -> int:
        """The map's fd (loaded objects only); owned by the object, do not close."""
        fd = int(lib.bpf_map__fd(self._handle("map fd")))
        if fd < 0:
            raise BpfError(f"map fd {self.name}", errno.EBADF, reason="object is not loaded")
        return fd

    # -- contents (after load) ----------------------------------------
    def info(self) -> MapInfo:
        raw = ffi.new("struct bpf_map_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
        rc = lib.bpf_obj_get_info_by_fd(self.fd, raw, size)
        if rc < 0:
            raise BpfError(f"map info {self.name}", -rc)
        return MapInfo(
            id=raw.id,
            type=raw.type,
            type_name=ffi.string(lib.libbpf_bpf_map_type_str(raw.type)).decode(),
            name=ffi.string(raw.name).decode(),
            key_size=raw.key_size,
            value_size=raw.value_size,
            max_entries=raw.max_entries,
            flags=raw.map_flags,
        )

    def lookup(self, key: KeyLike) -> bytes | list[bytes] | None:
        """The value at ``key`` (a list of per-CPU values for per-CPU maps), or None."""
        op = f"map lookup {self.name}"
        k = _pack(key, self.key_size, "key", op)
        buf = ffi.new("char[]", self._slot * self._ncpus)
        rc = lib.bpf_map_lookup_elem(self.fd, k, buf)
        if rc == -errno.ENOENT:
            return None
        if rc < 0:
            raise self._error(op, -rc)
        if not self.is_percpu:
            return bytes(ffi.buffer(buf, self.value_size)[:])
        raw = ffi.buffer(buf)
        return [raw[i * self._slot : i * self._slot + self.value_size] for i in range(self._ncpus)]

    def update(self, key: KeyLike, value: ValueLike | Sequence[ValueLike], flags: int = UpdateFlags.ANY) -> None:
        """Set ``key`` to ``value``; for per-CPU maps one value for all CPUs or a sequence of one per CPU."""
        op = f"map update {self.name}"
        k = _pack(key, self.key_size, "key", op)
        if self.is_percpu:
            values = self._percpu_values(value, op)
            buf = ffi.new("char[]", self._slot * self._ncpus)
            for i, v in enumerate(values):
                ffi.memmove(buf + i * self._slot, v, self.value_size)
            data: Any = buf
        else:
            data = _pack(value, self.value_size, "value", op)  # type: ignore[arg-type]
        rc = lib.bpf_map_update_elem(self.fd, k, data, flags)
        if rc < 0:
            raise self._error(op, -rc)

    def delete(self, key: KeyLike) -> bool:
        """Delete ``key``; False if it was absent."""
        op = f"map delete {self.name}"
        rc = lib.bpf_map_delete_elem(self.fd, _pack(key, self.key_size, "key", op))
        if rc == -errno.ENOENT:
            return False
        if rc < 0:
            raise self._error(op, -rc)
        return True

    def keys(self) -> Iterator[bytes]:
        """Iterate keys (``bpf_map_get_next_key``). Deleting while iterating a
        hash map restarts the walk in the kernel: collect ``list(m.keys())`` first."""
        op = f"map iterate {self.name}"
        fd = self.fd
        cur = ffi.new("char[]", self.key_size)
        nxt = ffi.new("char[]", self.key_size)
        prev: Any = ffi.NULL
        while True:
            rc = lib.bpf_map_get_next_key(fd, prev, nxt)
            if rc == -errno.ENOENT:
                return
            if rc < 0:
                raise self._error(op, -rc)
            key = ffi.buffer(nxt, self.key_size)[:]
            yield key
            ffi.memmove(cur, nxt, self.key_size)
            prev = cur

    def items(self) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        """Iterate (key, value); keys deleted meanwhile are skipped."""
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def values(self) -> Iterator[bytes | list[bytes]]:
        for _, value in self.items():
            yield value

    def __iter__(self) -> Iterator[bytes]:
        return self.keys()

    def __getitem__(self, key: KeyLike) -> bytes | list[bytes]:
        value = self.lookup(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: KeyLike, value: ValueLike | Sequence[ValueLike]) -> None:
        self.update(key, value)

    def __delitem__(self, key: KeyLike) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return self.lookup(key) is not None  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<Map {self.name} {self.type_name} key={self.key_size} value={self.value_size}>"

    # -- helpers --------------------------------------------------------
    def _percpu_values(self, value: ValueLike | Sequence[ValueLike], op: str) -> list[bytes]:
        if isinstance(value, (bytes, bytearray, memoryview, int)):
            one = _pack(value, self.value_size, "value", op)
            return [one] * self._ncpus
        values = [_pack(v, self.value_size, "value", op) for v in value]
        if len(values) != self._ncpus:
            raise ValueError(f"{op}: {len(values)} per-CPU value(s) given, {self._ncpus} possible CPUs")
        return values

    def _error(self, op: str, code: int) -> BpfError:
        if code in _NOT_SUPPORTED:
            return NotSupportedError(op, code, f"{op.split()[1]} on {self.type_name} maps")
        return BpfError(op, code)

    def _handle(self, op: str) -> Any:
        self._owner._require_open(f"{op} {self.name}")
        return self._ptr

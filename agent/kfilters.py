"""The agent's side of the in-kernel filters: filling the approver maps from
the policy, and the discarders revision (see ebpf/include/filters.h)."""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

import ipaddress

from codegen.cbackend import ADDR, BASENAME, PORT, PREFIX, VALUE, TypeFilter
from codegen.eventtypes import INVALIDATING_TYPES

from .events.layout import Layout
from .libbpf.object import BpfObject

log = logging.getLogger(__name__)

NAME_MAX = 255

# Event types whose hooks keep discarders right: a file that moves or gets a
# new name invalidates its discarders (tombstones), a mount change all of them.


def invalidation_hooks(filters: dict[str, TypeFilter]) -> set[str]:
    """Types to hook (without sending) so the policy's discarders stay valid."""
    if not any(f.discard for f in filters.values()):
        return set()
    return set(INVALIDATING_TYPES - set(filters))


def type_bit(type_id: int) -> int:
    return 1 << type_id


def basename_key(name: str, layout: Layout) -> bytes | None:
    """struct rs_basename_key for ``name``: its length and first bytes."""
    raw = name.encode("utf-8", "surrogateescape")
    if not raw or len(raw) > NAME_MAX or b"/" in raw or b"\0" in raw:
        return None
    key = layout.ffi.new("struct rs_basename_key *")
    key.len = len(raw)
    prefix = raw[: layout.const("RS_BASENAME_PREFIX")]
    layout.ffi.memmove(key.prefix, prefix, len(prefix))
    return bytes(layout.ffi.buffer(key))


def addr_key(type_id: int, network: ipaddress.IPv4Network | ipaddress.IPv6Network, layout: Layout) -> bytes:
    """struct rs_addr_key of a network approver: the type, the family, the prefix."""
    key = layout.ffi.new("struct rs_addr_key *")
    key.type = type_id
    key.family = network.version
    key.prefixlen = 16 + network.prefixlen
    packed = network.network_address.packed
    layout.ffi.memmove(key.addr, packed, len(packed))
    return bytes(layout.ffi.buffer(key))


def port_key(type_id: int, port: int, layout: Layout) -> bytes | None:
    if not 0 <= port <= 0xFFFF:
        return None  # no event has it: nothing to approve
    key = layout.ffi.new("struct rs_port_key *")
    key.type = type_id
    key.port = port
    return bytes(layout.ffi.buffer(key))


def prefix_entries(type_id: int, masks: dict[str, int], layout: Layout) -> dict[bytes, int]:
    """struct rs_prefix_key -> flags mask for one type's prefixes. A prefix is
    cut to the key's RS_PREFIX_MAX bytes (the kernel compares no more of a
    path); its mask is the union of its own and those of every shorter prefix
    of the type it starts with (the kernel's longest match alone decides)."""
    limit = layout.const("RS_PREFIX_MAX")
    cut: dict[bytes, int] = {}
    for prefix, mask in masks.items():
        raw = prefix.encode("utf-8", "surrogateescape")[:limit]
        cut[raw] = cut.get(raw, 0) | mask
    out = {}
    for raw in cut:
        mask = 0
        for other, m in cut.items():
            if raw.startswith(other):
                mask |= m
        key = layout.ffi.new("struct rs_prefix_key *")
        key.prefixlen = 8 * (1 + len(raw))
        key.type = type_id
        layout.ffi.memmove(key.path, raw, len(raw))
        out[bytes(layout.ffi.buffer(key))] = mask & 0xFFFFFFFFFFFFFFFF
    return out


@dataclass
class _Values:
    basenames: dict[bytes, int]   # basename key -> type mask
    flags: dict[int, int]         # type id -> flags mask
    addrs: set[bytes]             # struct rs_addr_key
    ports: set[bytes]             # struct rs_port_key
    prefixes: dict[bytes, int]    # struct rs_prefix_key -> flags mask
    prefix_flags: dict[int, int]  # type id -> the union of its prefixes' masks


def value_key(type_id: int, value: int, layout: Layout) -> bytes:
    """struct rs_value_key for a scalar approver value."""
    key = layout.ffi.new("struct rs_value_key *")
    key.type = type_id
    key.value = value & 0xFFFFFFFFFFFFFFFF
    return bytes(layout.ffi.buffer(key))


def _longest_mask(key: bytes, entries: dict[bytes, int]) -> int:
    """The mask ``entries`` (struct rs_prefix_key -> mask, as the kernel's
    trie) give the paths of prefix ``key``: its longest match's."""
    bits = int.from_bytes(key[:4], "little")
    body = key[4:4 + bits // 8]
    best, mask = -1, 0
    for k, m in entries.items():
        kbits = int.from_bytes(k[:4], "little")
        if kbits <= bits and kbits > best and body.startswith(k[4:4 + kbits // 8]):
            best, mask = kbits, m
    return mask


@dataclass
class KernelFilters:
    obj: BpfObject
    layout: Layout
    filters: dict[str, TypeFilter]
    type_ids: dict[str, int]

    def _values(self, filters: dict[str, TypeFilter]) -> _Values:
        """The map entries ``filters`` need."""
        masks: dict[bytes, int] = {}
        flag_masks: dict[int, int] = {}
        addrs: set[bytes] = set()
        ports: set[bytes] = set()
        prefixes: dict[bytes, int] = {}
        prefix_flags: dict[int, int] = {}
        for event_type, f in sorted(filters.items()):
            type_id = self.type_ids[event_type]
            if PREFIX in f.approve_kinds:
                found = prefix_entries(type_id, f.prefix_masks(), self.layout)
                prefixes |= found
                for mask in found.values():
                    prefix_flags[type_id] = prefix_flags.get(type_id, 0) | mask
            if ADDR in f.approve_kinds:
                addrs |= {addr_key(type_id, n, self.layout) for n in f.networks}
            if PORT in f.approve_kinds:
                ports |= {k for k in (port_key(type_id, p, self.layout) for p in f.ports) if k is not None}
            if BASENAME in f.approve_kinds:
                for name in sorted(f.basenames):
                    key = basename_key(name, self.layout)
                    if key is None:
                        log.warning("%s: approver basename %r cannot name a file; ignored", event_type, name)
                        continue
                    masks[key] = masks.get(key, 0) | type_bit(type_id)
            if f.flags_mask:
                flag_masks[type_id] = f.flags_mask
        for name, entries in (("basename_approvers", masks), ("addr_approvers", addrs), ("port_approvers", ports),
                              ("prefix_approvers", prefixes)):
            limit = self.obj.map(name).max_entries
            if len(entries) > limit:
                raise ValueError(f"{len(entries)} approvers exceed the {limit} entries of map {name}")
        return _Values(masks, flag_masks, addrs, ports, prefixes, prefix_flags)

    def _value_keys(self, filters: dict[str, TypeFilter]) -> set[bytes]:
        keys = {value_key(self.type_ids[t], v, self.layout)
                for t, f in sorted(filters.items()) if VALUE in f.approve_kinds for v in f.values}
        limit = self.obj.map("value_approvers").max_entries
        if len(keys) > limit:
            raise ValueError(f"{len(keys)} approver values exceed the map's {limit} entries")
        return keys

    def load_approvers(self) -> int:
        """Write the approvers; returns how many basename entries."""
        v = self._values(self.filters)
        basenames, flags = self.obj.map("basename_approvers"), self.obj.map("flags_approvers")
        for type_id, mask in v.flags.items():
            flags.update(type_id, mask)
        for key, mask in v.basenames.items():
            basenames.update(key, mask)
        values = self.obj.map("value_approvers")
        for key in self._value_keys(self.filters):
            values.update(key, b"\x01")
        for name, keys in (("addr_approvers", v.addrs), ("port_approvers", v.ports)):
            for key in keys:
                self.obj.map(name).update(key, b"\x01")
        for key, mask in v.prefixes.items():
            self.obj.map("prefix_approvers").update(key, struct.pack("=Q", mask))
        for type_id, mask in v.prefix_flags.items():
            self.obj.map("prefix_flags").update(type_id, struct.pack("=Q", mask))
        return len(v.basenames)

    def reload(self, filters: dict[str, TypeFilter]) -> int:
        """Replace the approver values by those of ``filters`` (same shape)
        and invalidate every discarder. In two steps: first the union of old
        and new values (an event in between is over-approved, never
        under-approved), then exactly the new ones."""
        v = self._values(filters)
        masks, flag_masks = v.basenames, v.flags
        basenames, flags = self.obj.map("basename_approvers"), self.obj.map("flags_approvers")
        values, new_values = self.obj.map("value_approvers"), self._value_keys(filters)
        old_values = set(values.keys())
        for key in new_values - old_values:
            values.update(key, b"\x01")
        old_keys = set(basenames.keys())
        sets = [(self.obj.map(name), keys) for name, keys in (("addr_approvers", v.addrs), ("port_approvers", v.ports))]
        before = [set(m.keys()) for m, _ in sets]
        for (m, keys), had in zip(sets, before, strict=True):
            for key in keys - had:
                m.update(key, b"\x01")
        for type_id in self.type_ids.values():
            old = flags.lookup(type_id)
            old_mask = int.from_bytes(old, "little") if isinstance(old, bytes) else 0
            flags.update(type_id, old_mask | flag_masks.get(type_id, 0))
        for key, mask in masks.items():
            old = basenames.lookup(key)
            basenames.update(key, mask | (int.from_bytes(old, "little") if isinstance(old, bytes) else 0))
        prefixes, prefix_flags = self.obj.map("prefix_approvers"), self.obj.map("prefix_flags")
        for type_id in self.type_ids.values():
            old = prefix_flags.lookup(type_id)
            old_mask = int.from_bytes(old, "little") if isinstance(old, bytes) else 0
            prefix_flags.update(type_id, struct.pack("=Q", old_mask | v.prefix_flags.get(type_id, 0)))
        old_prefixes = {k: int.from_bytes(m, "little") for k, m in prefixes.items() if isinstance(m, bytes)}
        for key in set(old_prefixes) | set(v.prefixes):
            # every key holds what the old and the new set each give its
            # paths (their longest match's mask, folded already)
            union = _longest_mask(key, old_prefixes) | _longest_mask(key, v.prefixes)
            prefixes.update(key, struct.pack("=Q", union))
        for type_id in self.type_ids.values():
            flags.update(type_id, flag_masks.get(type_id, 0))
        for key in old_keys - set(masks):
            basenames.delete(key)
        for (m, keys), had in zip(sets, before, strict=True):
            for key in had - keys:
                m.delete(key)
        for key, mask in masks.items():
            basenames.update(key, mask)
        for key in set(old_prefixes) - set(v.prefixes):
            prefixes.delete(key)
        for key, mask in v.prefixes.items():
            prefixes.update(key, struct.pack("=Q", mask))
        for type_id in self.type_ids.values():
            prefix_flags.update(type_id, struct.pack("=Q", v.prefix_flags.get(type_id, 0)))
        for key in old_values - new_values:
            values.delete(key)
        self.filters = filters
        self.bump_revision()
        return len(masks)

    @property
    def revision(self) -> int:
        value = self.obj.map("discarders_revision").lookup(0)
        return struct.unpack("=I", value)[0] if isinstance(value, bytes) else 0

    def bump_revision(self) -> int:
        """Invalidate every discarder (policy reload)."""
        rev = (self.revision + 1) & 0xFFFFFFFF
        self.obj.map("discarders_revision").update(0, struct.pack("=I", rev))
        return rev

"""One ``struct.Struct`` per record struct, derived from cffi's view of events.h.

Reading a record field by field through cffi costs an attribute lookup
and a conversion per field (about 11 µs for an open record, 4 files and
a task). Here the struct's layout, as cffi parsed it from the very header
clang compiled, is flattened once into a ``struct`` format - every leaf
field at its offset, padding skipped - so a record is read by one
``unpack_from`` call and its parts picked out by index. Nothing is
written by hand: offsets, sizes and signedness all come from cffi.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import cffi

_SIGNED = {"int8_t", "int16_t", "int32_t", "int64_t", "signed char", "short", "int", "long", "long long"}
_BYTES = {"char", "uint8_t", "unsigned char"}     # arrays of these read as one bytes value
_CODES = {1: "b", 2: "h", 4: "i", 8: "q"}


@dataclass(frozen=True)
class Leaf:
    name: str               # dotted path: "proc.uid", "path.off", "parent_inodes[1]"
    offset: int
    code: str               # struct format code: "I", "q", "16s", ...
    size: int


def _leaves(ffi: cffi.FFI, ctype: Any, prefix: str, base: int) -> Iterator[Leaf]:
    for name, field in ctype.fields:
        ftype = field.type
        path = f"{prefix}{name}"
        offset = base + field.offset
        if ftype.kind == "struct":
            yield from _leaves(ffi, ftype, f"{path}.", offset)
        elif ftype.kind == "array":
            item = ftype.item
            if item.kind == "primitive" and item.cname in _BYTES:
                yield Leaf(path, offset, f"{ftype.length}s", ftype.length)
                continue
            step = ffi.sizeof(item)
            for i in range(ftype.length):
                if item.kind == "struct":
                    yield from _leaves(ffi, item, f"{path}[{i}].", offset + i * step)
                else:
                    yield from _scalar(ffi, item, f"{path}[{i}]", offset + i * step)
        else:
            yield from _scalar(ffi, ftype, path, offset)


def _scalar(ffi: cffi.FFI, ctype: Any, path: str, offset: int) -> Iterator[Leaf]:
    if ctype.kind not in ("primitive", "enum"):
        raise TypeError(f"{path}: cannot decode a field of kind {ctype.kind} ({ctype.cname})")
    size = ffi.sizeof(ctype)
    code = _CODES[size]
    if ctype.kind == "primitive" and ctype.cname not in _SIGNED:
        code = code.upper()
    yield Leaf(path, offset, code, size)


class StructCodec:
    """A cffi struct type read by one ``struct.unpack_from``."""

    def __init__(self, ffi: cffi.FFI, cname: str, tail: str | None = None) -> None:
        """``tail``: a variable-length last member the kernel may cut; the
        codec reads the struct up to it, and ``size`` is where it starts."""
        ctype = ffi.typeof(cname)
        self.cname = cname
        self.size = ffi.offsetof(ctype, tail) if tail else ffi.sizeof(ctype)
        leaves = sorted((leaf for leaf in _leaves(ffi, ctype, "", 0) if leaf.offset < self.size),
                        key=lambda leaf: leaf.offset)
        fmt = ["="]
        at = 0
        for leaf in leaves:
            if leaf.offset < at:
                raise TypeError(f"{cname}: {leaf.name} overlaps the previous field (unions are not decodable)")
            if leaf.offset > at:
                fmt.append(f"{leaf.offset - at}x")
            fmt.append(leaf.code)
            at = leaf.offset + leaf.size
        self.struct = struct.Struct("".join(fmt))
        self.index = {leaf.name: i for i, leaf in enumerate(leaves)}
        self.unpack_from = self.struct.unpack_from

    def getter(self, *names: str) -> itemgetter[Any]:
        """Pick the named leaves out of an unpacked tuple, in this order (always a tuple)."""
        missing = [n for n in names if n not in self.index]
        if missing:
            raise KeyError(f"{self.cname} has no field {', '.join(missing)}")
        idx = [self.index[n] for n in names]
        if idx == list(range(idx[0], idx[0] + len(idx))):
            return itemgetter(slice(idx[0], idx[0] + len(idx)))  # consecutive leaves: one slice, faster
        return itemgetter(*idx)

    def prefixed(self, prefix: str) -> list[str]:
        """Leaf names under ``prefix`` (``"proc."``, ``"parent_inodes["``), in layout order."""
        return [n for n in self.index if n.startswith(prefix)]

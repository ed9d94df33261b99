"""The struct codec reads every field of every record struct where cffi
(the same parse of events.h) puts it: each leaf set through cffi to a
distinct value comes back from one unpack_from at its own index."""

from __future__ import annotations

import re
from typing import Any

import pytest

from agent.events.codec import StructCodec
from agent.events.decode import VARIABLE_TAIL
from agent.events.layout import layout
from codegen.eventtypes import PRODUCED

RECORDS = sorted({t.record for t in PRODUCED if t.record} | {"rs_event_header"})
_ITEM = re.compile(r"^(.*)\[(\d+)\]$")


def _get(obj: Any, part: str) -> Any:
    m = _ITEM.match(part)
    return getattr(obj, m.group(1))[int(m.group(2))] if m else getattr(obj, part)


def _set(obj: Any, path: str, value: Any) -> None:
    """Set a codec leaf (``a.b``, ``a[2]``, ``answers[0].addr``) in a cffi struct."""
    *parents, leaf = path.split(".")
    for p in parents:
        obj = _get(obj, p)
    m = _ITEM.match(leaf)
    if m:
        getattr(obj, m.group(1))[int(m.group(2))] = value
    else:
        setattr(obj, leaf, value)


@pytest.mark.parametrize("record", RECORDS)
def test_every_leaf_round_trips(record: str) -> None:
    ffi = layout().ffi
    tail = VARIABLE_TAIL.get(record)
    codec = StructCodec(ffi, f"struct {record}", tail=tail)
    assert codec.size == (ffi.offsetof(f"struct {record}", tail) if tail else ffi.sizeof(f"struct {record}"))
    rec = ffi.new(f"struct {record} *")
    zeros = codec.unpack_from(bytes(codec.size))
    expected: dict[str, Any] = {}
    for n, (name, i) in enumerate(codec.index.items()):
        value: Any
        if isinstance(zeros[i], bytes):           # a char array: its width, NUL-terminated
            width = len(zeros[i])
            value = (f"v{n}".encode() * width)[:width - 1] + b"\0"
        else:
            value = (n * 37 + 1) % 127
        _set(rec, name, value)
        expected[name] = value
    got = codec.unpack_from(bytes(ffi.buffer(rec)))
    assert {name: got[i] for name, i in codec.index.items()} == expected


def test_signed_fields_keep_their_sign() -> None:
    ffi = layout().ffi
    codec = StructCodec(ffi, "struct rs_file_event")
    rec = ffi.new("struct rs_file_event *")
    rec.retval = -13
    rec.dirfd = -100
    got = codec.unpack_from(bytes(ffi.buffer(rec)))
    assert got[codec.index["retval"]] == -13 and got[codec.index["dirfd"]] == -100


def test_getter_names_a_missing_field() -> None:
    codec = StructCodec(layout().ffi, "struct rs_exit_event")
    with pytest.raises(KeyError, match="rs_exit_event has no field nope"):
        codec.getter("exit_code", "nope")

"""Malformed records are counted under a reason and skipped; they never
stop the read loop (pure Python: records built with cffi from events.h).
Decoding is pure (no host state); resolving a decoded record needs only
user-space state (process cache, users, mounts), no root."""

from __future__ import annotations

from typing import Any

import pytest

from agent.clock import BootClock
from agent.events.decode import Decoder, ExitRecord
from agent.events.layout import layout
from agent.events.resolve import ResolveEnv, Resolver
from agent.mounts import MountTable
from agent.process.cache import ProcessCache
from agent.users import UserNames


@pytest.fixture
def decoder() -> Decoder:
    return Decoder(layout())


def resolver() -> Resolver:
    clock = BootClock()
    return Resolver(ResolveEnv(clock, ProcessCache(clock), UserNames(), MountTable()))


def _record(ctype: str, **hdr: int) -> tuple[Any, Any]:
    ffi = layout().ffi
    size = ffi.sizeof(ctype)
    buf = ffi.new("char[]", size)
    rec = ffi.cast(f"{ctype} *", buf)
    rec.hdr.size = size
    for k, v in hdr.items():
        setattr(rec.hdr, k, v)
    return buf, rec


def test_short_record(decoder: Decoder) -> None:
    ffi = layout().ffi
    buf = ffi.new("char[]", 8)
    assert decoder.decode(buf, 8) is None
    assert decoder.errors["short record"] == 1


def test_unknown_type(decoder: Decoder) -> None:
    buf, _ = _record("struct rs_exit_event", type=250)
    assert decoder.decode(buf, len(buf)) is None
    assert decoder.errors["unknown type 250"] == 1


def test_declared_size_beyond_the_record(decoder: Decoder) -> None:
    buf, rec = _record("struct rs_exit_event", type=layout().const("RS_EVENT_EXIT"))
    rec.hdr.size = len(buf) + 100
    assert decoder.decode(buf, len(buf)) is None
    assert decoder.errors["size beyond record"] == 1


def test_string_pointing_outside_the_record(decoder: Decoder) -> None:
    buf, rec = _record("struct rs_file_event", type=layout().const("RS_EVENT_OPEN"))
    rec.file.flags = layout().const("RS_FILE_PRESENT")
    rec.file.path.off = len(buf) - 2
    rec.file.path.len = 50
    assert decoder.decode(buf, len(buf)) is None
    assert decoder.errors["open: DecodeError"] == 1


def test_good_record_after_bad_ones_still_decodes(decoder: Decoder) -> None:
    test_unknown_type(decoder)
    buf, rec = _record("struct rs_exit_event", type=layout().const("RS_EVENT_EXIT"), pid=1, tid=1)
    rec.exit_code = 3 << 8
    record = decoder.decode(buf, len(buf))
    assert isinstance(record, ExitRecord) and record.exit_code == 3 << 8 and record.hdr.pid == 1
    doc = resolver().resolve(record)
    assert doc is not None
    # exit.* is the exiting process (fields.py) plus the code and cause
    assert (doc["exit"]["cause"], doc["exit"]["code"], doc["exit"]["pid"]) == ("EXITED", 3, 1)
    assert decoder.decoded == 1

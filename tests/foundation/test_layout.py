"""cffi's view of events.h must be exactly what clang compiled into the BPF
object: same size and member offsets for every struct that crosses the
kernel/user boundary (read from the object's BTF with bpftool)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from agent.build import ROOT
from agent.events.layout import layout

OBJECT = ROOT / "build" / "ebpf" / "probe.bpf.o"
_STRUCT = re.compile(r"^\[(\d+)\] STRUCT '(\w+)' size=(\d+) vlen=(\d+)")
_MEMBER = re.compile(r"^\s+'(\w+)' type_id=(\d+) bits_offset=(\d+)")


def btf_structs(obj: Path) -> dict[str, tuple[int, dict[str, int]]]:
    """struct name -> (size, {member: byte offset}) from the object's BTF."""
    out = subprocess.run(["bpftool", "btf", "dump", "file", str(obj), "format", "raw"],
                         check=True, capture_output=True, text=True).stdout
    structs: dict[str, tuple[int, dict[str, int]]] = {}
    current: dict[str, int] | None = None
    for line in out.splitlines():
        m = _STRUCT.match(line)
        if m:
            current = {}
            structs[m.group(2)] = (int(m.group(3)), current)
            continue
        m = _MEMBER.match(line)
        if m and current is not None:
            current[m.group(1)] = int(m.group(3)) // 8
        elif not line.startswith("\t"):
            current = None
    return structs


@pytest.fixture(scope="module")
def btf(built_objects: None) -> dict[str, tuple[int, dict[str, int]]]:
    return btf_structs(OBJECT)


def _struct_names() -> list[str]:
    return layout().struct_names()


def test_every_boundary_struct_is_in_the_object(btf) -> None:
    missing = [n for n in _struct_names() if n not in btf]
    assert not missing, f"add them to rs_btf_anchor in ebpf/probe.bpf.c: {missing}"


@pytest.mark.parametrize("name", _struct_names())
def test_cffi_layout_matches_btf(btf, name: str) -> None:
    ffi = layout().ffi
    size, members = btf[name]
    assert ffi.sizeof(f"struct {name}") == size
    for member, offset in members.items():
        assert ffi.offsetof(f"struct {name}", member) == offset, member
    cffi_members = {f[0] for f in ffi.typeof(f"struct {name}").fields}
    assert cffi_members == set(members)


@pytest.mark.parametrize("name", _struct_names())
def test_padding_is_explicit(name: str) -> None:
    """No hole the compiler filled in silently: members tile the struct."""
    ffi = layout().ffi
    t = ffi.typeof(f"struct {name}")
    end = 0
    for fname, field in t.fields:
        assert field.offset == end, f"implicit padding before {name}.{fname}"
        end = field.offset + ffi.sizeof(field.type)
    assert end == ffi.sizeof(t), f"implicit tail padding in {name}"
    if name != "rs_str":
        assert ffi.sizeof(t) % 8 == 0, f"{name} is not a multiple of 8 bytes"

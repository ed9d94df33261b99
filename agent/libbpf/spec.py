"""What a BPF object file contains, read without loading anything.

Like cilium/ebpf's CollectionSpec: :meth:`ObjectSpec.from_file` opens the
ELF through libbpf's ``bpf_object__open`` (no bpf(2) calls, so it works
without root), copies out programs, maps and global variables into frozen
dataclasses, and closes the object again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

from ._ffi import ffi, lib
from .btf import VariableSpec, datasec_names, datasec_variables
from .errors import BpfError
from .log import capture

__all__ = ["MapSpec", "ObjectSpec", "ProgramSpec", "VariableSpec"]

# Program types whose attach type says what they are (fentry vs fexit, ...).
_TYPED_ATTACH = {"tracing", "lsm", "ext", "raw_tracepoint"}


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    name: str
    section: str
    type: str
    attach_type: str | None
    autoload: bool
    insn_count: int

    @property
    def kind(self) -> str:
        """The section prefix libbpf attaches by: "tracepoint", "tp_btf", "fentry", ..."""
        return self.section.split("/", 1)[0].split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class MapSpec:
    name: str
    type: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    internal: bool


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    path: str
    name: str
    programs: tuple[ProgramSpec, ...]
    maps: tuple[MapSpec, ...]
    variables: tuple[VariableSpec, ...]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ObjectSpec:
        """Read the spec of the object file at ``path`` (no root needed)."""
        ptr = open_handle(os.fspath(path))
        try:
            return spec_of(ptr, os.fspath(path))
        finally:
            lib.bpf_object__close(ptr)

    def program(self, name: str) -> ProgramSpec:
        return _by_name(self.programs, name, "program", self.path)

    def map(self, name: str) -> MapSpec:
        return _by_name(self.maps, name, "map", self.path)

    def variable(self, name: str) -> VariableSpec:
        return _by_name(self.variables, name, "global variable", self.path)


_T = TypeVar("_T", ProgramSpec, MapSpec, VariableSpec)


def _by_name(items: tuple[_T, ...], name: str, what: str, path: str) -> _T:
    for item in items:
        if item.name == name:
            return item
    known = ", ".join(sorted(item.name for item in items)) or "none"
    raise KeyError(f"{os.path.basename(path)}: no {what} {name!r} (have: {known})")


def open_handle(path: str, *, object_name: str | None = None, btf_custom_path: str | None = None) -> Any:
    """``bpf_object__open_file`` with errors raised as :class:`BpfError`."""
    opts = ffi.new("struct bpf_object_open_opts *")
    opts.sz = ffi.sizeof("struct bpf_object_open_opts")
    keep = []
    if object_name is not None:
        keep.append(ffi.new("char[]", object_name.encode()))
        opts.object_name = keep[-1]
    if btf_custom_path is not None:
        keep.append(ffi.new("char[]", os.fsencode(btf_custom_path)))
        opts.btf_custom_path = keep[-1]
    with capture():
        ptr = lib.bpf_object__open_file(os.fsencode(path), opts)
        code = ffi.errno
    if ptr == ffi.NULL:
        raise BpfError(f"open object {os.path.basename(path)}", code, where=f"open object {path}")
    return ptr


def _str(ptr: Any) -> str:
    return ffi.string(ptr).decode() if ptr != ffi.NULL else ""


def program_spec(prog: Any) -> ProgramSpec:
    ptype = _str(lib.libbpf_bpf_prog_type_str(lib.bpf_program__type(prog))) or "unknown"
    attach = None
    if ptype in _TYPED_ATTACH:
        attach = _str(lib.libbpf_bpf_attach_type_str(lib.bpf_program__expected_attach_type(prog))) or None
    return ProgramSpec(
        name=_str(lib.bpf_program__name(prog)),
        section=_str(lib.bpf_program__section_name(prog)),
        type=ptype,
        attach_type=attach,
        autoload=bool(lib.bpf_program__autoload(prog)),
        insn_count=int(lib.bpf_program__insn_cnt(prog)),
    )


def map_spec(m: Any, name: str | None = None) -> MapSpec:
    return MapSpec(
        name=name if name is not None else _str(lib.bpf_map__name(m)),
        type=_str(lib.libbpf_bpf_map_type_str(lib.bpf_map__type(m))) or "unknown",
        key_size=int(lib.bpf_map__key_size(m)),
        value_size=int(lib.bpf_map__value_size(m)),
        max_entries=int(lib.bpf_map__max_entries(m)),
        flags=int(lib.bpf_map__map_flags(m)),
        internal=bool(lib.bpf_map__is_internal(m)),
    )


def iter_programs(obj: Any) -> list[Any]:
    progs = []
    prog = lib.bpf_object__next_program(obj, ffi.NULL)
    while prog != ffi.NULL:
        progs.append(prog)
        prog = lib.bpf_object__next_program(obj, prog)
    return progs


def iter_maps(obj: Any) -> list[Any]:
    maps = []
    m = lib.bpf_object__next_map(obj, ffi.NULL)
    while m != ffi.NULL:
        maps.append(m)
        m = lib.bpf_object__next_map(obj, m)
    return maps


def _address(ptr: Any) -> int:
    return int(ffi.cast("uintptr_t", ptr))


def section_maps(obj: Any) -> dict[int, str]:
    """Internal maps (by address) -> the data section they back.

    libbpf 1.1 names them "<obj prefix>.rodata" (truncated to 15 chars);
    the section name is found through the BTF DATASECs and
    ``bpf_object__find_map_by_name``, which matches sections exactly.
    """
    found = {}
    for section in datasec_names(lib.bpf_object__btf(obj)):
        m = lib.bpf_object__find_map_by_name(obj, section.encode())
        if m != ffi.NULL:
            found[_address(m)] = section
    return found


def map_name(m: Any, sections: dict[int, str]) -> str:
    """A map's name: its section (".rodata", ".bss", ...) for internal maps."""
    return sections.get(_address(m)) or _str(lib.bpf_map__name(m))


def variables_of(obj: Any) -> tuple[VariableSpec, ...]:
    btf = lib.bpf_object__btf(obj)
    found: list[VariableSpec] = []
    for section in section_maps(obj).values():
        found.extend(datasec_variables(btf, section))
    return tuple(found)


def spec_of(obj: Any, path: str) -> ObjectSpec:
    sections = section_maps(obj)
    return ObjectSpec(
        path=path,
        name=_str(lib.bpf_object__name(obj)),
        programs=tuple(program_spec(p) for p in iter_programs(obj)),
        maps=tuple(map_spec(m, map_name(m, sections)) for m in iter_maps(obj)),
        variables=variables_of(obj),
    )

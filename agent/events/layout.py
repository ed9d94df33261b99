"""The record layout shared with the kernel, read from ebpf/include/events.h.

The header is the single definition of every struct that crosses the
kernel/user boundary. This module feeds the region between the markers
``RS_CDEF_BEGIN`` and ``RS_CDEF_END`` to ``cffi.FFI.cdef`` (cdef-only, no
compilation), so Python decodes records with the very declarations clang
compiled - there are no hand-written offsets anywhere in user space.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import cffi

BEGIN_MARK = "/* RS_CDEF_BEGIN */"
END_MARK = "/* RS_CDEF_END */"

# Fixed-width kernel types used by the header; vmlinux.h defines them for BPF.
_PRELUDE = """
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int8_t __s8;
typedef int16_t __s16;
typedef int32_t __s32;
typedef int64_t __s64;
"""


class LayoutError(RuntimeError):
    """events.h could not be read or parsed."""


def _header_candidates() -> list[Path]:
    here = Path(__file__).resolve()
    return [
        here.parent / "events.h",  # installed copy (package data)
        here.parents[2] / "ebpf" / "include" / "events.h",  # source checkout
    ]


def find_header() -> Path:
    for path in _header_candidates():
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in _header_candidates())
    raise LayoutError(f"events.h not found (tried {tried}); reinstall the agent")


def cdef_source(header_text: str) -> str:
    """The cdef-able region of the header."""
    try:
        start = header_text.index(BEGIN_MARK) + len(BEGIN_MARK)
        end = header_text.index(END_MARK, start)
    except ValueError as exc:
        raise LayoutError(f"events.h lacks the {BEGIN_MARK} / {END_MARK} markers") from exc
    return header_text[start:end]


@dataclass(frozen=True)
class Layout:
    """A parsed events.h: the FFI for casting records, and its constants."""

    ffi: cffi.FFI
    header: Path
    constants: dict[str, int]

    def const(self, name: str) -> int:
        return self.constants[name]

    def sizeof(self, ctype: str) -> int:
        return self.ffi.sizeof(ctype)

    def offsetof(self, ctype: str, *fields: str) -> int:
        return self.ffi.offsetof(ctype, *fields)

    def struct_names(self) -> list[str]:
        return sorted(
            name for name in self.ffi.list_types()[1] if not name.startswith("$")
        )


_DEFINE_RE = re.compile(r"^#define\s+(\w+)\s+-?(?:0[xX][0-9a-fA-F]+|\d+)\b", re.M)
_ENUMERATOR_RE = re.compile(r"^\s*(RS_[A-Z0-9_]+)\s*=", re.M)


def parse(header: Path) -> Layout:
    text = header.read_text()
    source = cdef_source(text)
    ffi = cffi.FFI()
    try:
        ffi.cdef(_PRELUDE + source)
    except cffi.CDefError as exc:
        raise LayoutError(f"{header}: cffi cannot parse the record layout: {exc}") from exc
    # Constants through cffi itself (ABI-mode handle on the process: nothing
    # is loaded, enum values come from the cdef).
    consts = ffi.dlopen(None)
    names = _DEFINE_RE.findall(source) + _ENUMERATOR_RE.findall(source)
    constants = {name: int(getattr(consts, name)) for name in names}
    return Layout(ffi=ffi, header=header, constants=constants)


@functools.cache
def layout() -> Layout:
    """The layout of the events.h this agent was built with (parsed once)."""
    return parse(find_header())

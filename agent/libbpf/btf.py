"""Global variables of a BPF object, found through its BTF DATASECs.

Every ``.rodata``/``.data``/``.bss`` (and ``.rodata.*``/``.data.*``) section
of a BPF object is a BTF DATASEC listing its variables with their offset
and size. libbpf backs each such section with an internal map whose name is
the section name; a variable's bytes live at ``offset`` in that map's
initial value. No offset is ever written by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._ffi import ffi, lib

__all__ = ["VariableSpec", "datasec_names", "datasec_variables"]

# DATASECs that hold no loader-settable variables.
_NOT_DATA = (".kconfig", ".ksyms", ".maps")

_KIND_NAMES = {
    1: "int", 2: "ptr", 3: "array", 4: "struct", 5: "union", 6: "enum",
    7: "fwd", 8: "typedef", 9: "volatile", 10: "const", 11: "restrict",
    12: "func", 13: "func_proto", 14: "var", 15: "datasec", 16: "float",
    17: "decl_tag", 18: "type_tag", 19: "enum64",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class VariableSpec:
    """One global variable: where it lives and what BTF says it is."""

    name: str
    section: str
    offset: int
    size: int
    kind: str
    signed: bool

    @property
    def read_only(self) -> bool:
        """True for ``.rodata*`` (``const volatile``): frozen once loaded."""
        return self.section.startswith(".rodata")


def datasec_names(btf: Any) -> list[str]:
    """Names of the data sections (``.rodata``, ``.data.foo``, ...) in ``btf``."""
    if btf == ffi.NULL:
        return []
    names = []
    for type_id in range(1, lib.btf__type_cnt(btf)):
        t = lib.btf__type_by_id(btf, type_id)
        if lib.btf_kind(t) == lib.BTF_KIND_DATASEC:
            name = ffi.string(lib.btf__name_by_offset(btf, t.name_off)).decode()
            if name not in _NOT_DATA:
                names.append(name)
    return names


def datasec_variables(btf: Any, section: str) -> list[VariableSpec]:
    """The variables of DATASEC ``section`` in ``btf`` (a ``struct btf *``)."""
    if btf == ffi.NULL:
        return []
    sec_id = lib.btf__find_by_name_kind(btf, section.encode(), lib.BTF_KIND_DATASEC)
    if sec_id < 0:
        return []
    sec = lib.btf__type_by_id(btf, sec_id)
    infos = lib.btf_var_secinfos(sec)
    result = []
    for i in range(lib.btf_vlen(sec)):
        info = infos[i]
        var = lib.btf__type_by_id(btf, info.type)
        if lib.btf_kind(var) != lib.BTF_KIND_VAR:
            continue
        name = ffi.string(lib.btf__name_by_offset(btf, var.name_off)).decode()
        kind, signed = _describe(btf, var.type)
        result.append(VariableSpec(name, section, info.offset, info.size, kind, signed))
    return result


def _describe(btf: Any, type_id: int) -> tuple[str, bool]:
    resolved = lib.btf__resolve_type(btf, type_id)
    if resolved < 0:
        return "unknown", False
    t = lib.btf__type_by_id(btf, resolved)
    kind = lib.btf_kind(t)
    if kind == lib.BTF_KIND_INT:
        return "int", bool(lib.btf_int_encoding(t) & lib.BTF_INT_SIGNED)
    if kind in (lib.BTF_KIND_ENUM, lib.BTF_KIND_ENUM64):
        # kflag set means a signed enum (BTF since 6.0)
        return "enum", bool(t.info >> 31)
    return _KIND_NAMES.get(kind, "unknown"), False

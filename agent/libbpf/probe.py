"""Helpers for feature probes: does this program load (and attach) here?"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from ._ffi import ffi, lib
from .errors import BpfError
from .log import capture
from .object import BpfObject

__all__ = ["LibbpfVersion", "ProbeResult", "libbpf_version", "try_load"]


@dataclass(frozen=True, slots=True)
class LibbpfVersion:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def libbpf_version() -> LibbpfVersion:
    """The version of the libbpf the binding runs against (e.g. 1.1)."""
    return LibbpfVersion(int(lib.libbpf_major_version()), int(lib.libbpf_minor_version()))


def libbpf_version_string() -> str:
    return str(ffi.string(lib.libbpf_version_string()).decode())


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """``ok`` or the errno and message of the first failing step (``stage``)."""

    ok: bool
    errno: int
    message: str
    stage: str = "attach"
    error: BpfError | None = None


def try_load(obj_path: str | os.PathLike[str], prog_name: str, attach: bool = True,
             maps: Iterable[str] | None = None) -> ProbeResult:
    """Load only ``prog_name`` from ``obj_path`` (and attach it), then undo everything.

    ``maps``: the only maps (besides the object's internal ones) to create,
    those the program uses: a map type this kernel lacks (task storage before
    5.11) then fails only the probe of the program that needs it. None:
    every map.

    A failure to load or attach is the answer, not an error: it comes back
    as ``ProbeResult(ok=False, ...)`` and libbpf's warnings are logged at
    DEBUG. Opening the file failing (missing, not an ELF) or an unknown
    ``prog_name`` still raise: those are bugs in the probe.
    """
    with capture(demote=True), BpfObject(obj_path) as obj:
        obj.set_autoload([prog_name])
        if maps is not None:
            keep = set(maps)
            for m in obj.maps.values():
                if not m.internal:
                    m.set_autocreate(m.name in keep)
        stage = "load"
        try:
            obj.load()
            if attach:
                stage = "attach"
                obj.attach(prog_name).close()
        except BpfError as exc:
            return ProbeResult(False, exc.errno or 0, str(exc), stage, exc)
    return ProbeResult(True, 0, "ok", "attach" if attach else "load")

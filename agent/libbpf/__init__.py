"""cffi binding of libbpf for the agent (API mode; see ``_ffi.py`` for why).

Public API::

    ObjectSpec.from_file(path)           # programs/maps/globals, no root needed
    BpfObject(path)                      # open; set_autoload/set_global/resize; load; attach
    load_object(path, variables=..., attach=True)  # all of it, all or nothing
    Program.attach() -> Link             # Link.close()/detach()
    Map: lookup/update/delete/keys/items/info (per-CPU aware)
    RingBuffer(map, callback).poll()/consume(); record_bytes(data, size)
    try_load(obj_path, prog_name, attach=True) -> ProbeResult
    libbpf_version()
    BpfError(OSError) > NotSupportedError, VerifierError

libbpf's log goes to the ``agent.libbpf.libbpf`` logger.
"""

from ._ffi import BindingNotBuiltError
from .btf import VariableSpec
from .errors import BpfError, NotSupportedError, VerifierError
from .link import Link
from .log import LIBBPF_LOGGER, capture
from .maps import Map, MapInfo, UpdateFlags
from .object import BpfObject, GlobalValue, Program, load_object
from .probe import LibbpfVersion, ProbeResult, libbpf_version, libbpf_version_string, try_load
from .ringbuf import RingBuffer, SampleCallback, record_bytes
from .spec import MapSpec, ObjectSpec, ProgramSpec

__all__ = [
    "LIBBPF_LOGGER",
    "BindingNotBuiltError",
    "BpfError",
    "BpfObject",
    "GlobalValue",
    "LibbpfVersion",
    "Link",
    "Map",
    "MapInfo",
    "MapSpec",
    "NotSupportedError",
    "ObjectSpec",
    "ProbeResult",
    "Program",
    "ProgramSpec",
    "RingBuffer",
    "SampleCallback",
    "UpdateFlags",
    "VariableSpec",
    "VerifierError",
    "capture",
    "libbpf_version",
    "libbpf_version_string",
    "load_object",
    "record_bytes",
    "try_load",
]

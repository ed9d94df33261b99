"""The compiled cffi binding of libbpf: ``ffi`` and ``lib``.

Decision: API mode (``ffibuilder.set_source`` + ``extern "Python"``), not
ABI mode (``ffi.dlopen`` + ``ffi.callback``).

Measured with ``python -m bench.bench_ringbuf --rounds 9`` on the development
VM (kernel 6.18, 2 vCPUs, libbpf 1.1.2, CPython 3.11, cffi 2.0.0): a BPF
program emits 100k 64-byte records into a 16 MiB ring buffer, Python drains
them with ``ring_buffer__consume``; median ns per record, two runs:

======================================  ==========  ==========
callback                                API mode    ABI mode
======================================  ==========  ==========
pure C counter (libbpf loop, no Python)    3           (same)
empty Python callback                    197-200     202-213
decode: ffi.cast to struct, 3 fields     471-472     465-469
decode: struct.unpack_from(ffi.buffer)   347-351     344-346
copy: record_bytes (64 bytes)            377-378     373-375
======================================  ==========  ==========

API mode's compiled trampoline alone (``extern "Python"`` returning 0, no
dispatch) measured 154 ns/record; the binding's dispatch to the consumer's
callback (``ffi.from_handle(ctx)`` -> slot -> call) adds the rest. So per
record the two modes cost the same within noise (API 2-6 % cheaper for an
empty callback): the cost is the C->Python transition (GIL re-acquired per
record) and what the callback does, not the FFI mode. libbpf's own loop is
3 ns/record.

Why API mode, then:

* va_list: libbpf's print callback receives a ``va_list``. API mode formats
  it with ``vsnprintf`` in a few lines of C (portable, and long verifier logs
  are formatted into a heap buffer); ABI mode would pass the ``va_list`` to
  libc's ``vsnprintf`` as an opaque pointer, correct only where ``va_list``
  is an array type (x86_64: yes; not guaranteed elsewhere).
* checked at build time: "..." in the cdef lets the C compiler take struct
  layouts (``bpf_map_info``, ``bpf_object_open_opts``, ``btf_type``) and
  constants from libbpf's own headers, and libbpf's ``static inline`` BTF
  helpers (``btf_var_secinfos``, ``btf_int_encoding``) become callable.
  Nothing is a hand-copied offset or constant.
* a little cheaper per record, as measured above, and no libffi closure
  per ring buffer.
* cost: a C compiler, python3-dev and libbpf-dev at install time (the BPF
  build needs clang and libbpf-dev anyway). ``pip install -e .`` builds it
  (setup.py, ``cffi_modules``); a missing or stale extension raises
  :class:`BindingNotBuiltError` with the command to run.

Where the per-record time could still go down (not done): copying records in
C into a batch and calling Python once per batch measured ~90 ns/record for
the Python loop alone (vs ~200 now), at the price of a copy and harder error
semantics; and decoders should prefer ``struct.unpack_from`` over
``ffi.buffer`` to per-field ``ffi.cast`` reads (table above).
"""

from __future__ import annotations

from typing import Any

from . import _cdef

__all__ = ["BindingNotBuiltError", "ffi", "lib"]

_REBUILD = (
    "build it with `.venv/bin/pip install -e .` from the repository root "
    "(needs gcc, python3-dev, libbpf-dev, libffi-dev; `make setup` does all of it)"
)


class BindingNotBuiltError(ImportError):
    """The compiled extension agent._libbpf_cffi is missing or stale."""


try:
    from agent import _libbpf_cffi as _ext  # type: ignore[attr-defined]
except ImportError as exc:  # pragma: no cover - exercised by hand only
    raise BindingNotBuiltError(
        f"agent.libbpf: the compiled libbpf binding {_cdef.MODULE_NAME} is missing ({exc}); {_REBUILD}"
    ) from exc

ffi: Any = _ext.ffi
lib: Any = _ext.lib

_built = ffi.string(lib.rsa_binding_digest()).decode()
if _built != _cdef.DIGEST:  # pragma: no cover - exercised by hand only
    raise BindingNotBuiltError(
        f"agent.libbpf: the compiled libbpf binding is stale (built from declarations "
        f"{_built}, source has {_cdef.DIGEST}); re{_REBUILD}"
    )

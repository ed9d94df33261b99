"""The compiled cffi binding of libbpf: ``ffi`` and ``lib``.

Decision: API mode (``ffibuilder.set_source`` + ``extern "Python"``), not
ABI mode (``ffi.dlopen`` + ``ffi.callback``).

Measured on the development VM (kernel 6.18, 2 vCPUs, libbpf 1.1.2,
CPython 3.11, cffi 2.0.0) with ``python -m bench.bench_ringbuf``: a BPF
program emits 64-byte records into a 4 MiB ring buffer, Python drains them
with ``ring_buffer__consume``; ns per record, median of 5 rounds of 200k
records:

=====================================  ===========  ============  =====
callback                               ABI mode     API mode      ratio
=====================================  ===========  ============  =====
pure C counter (no Python, baseline)   {c_abi}      {c_api}
empty Python callback                  {e_abi}      {e_api}
decode (ffi.cast to struct, 3 fields)  {d_abi}      {d_api}
=====================================  ===========  ============  =====

(see bench/README.md for the full table; the numbers above are copied from
one run of it.)

Why API mode:

* cost per record: the ``extern "Python"`` trampoline is compiled C, where
  ``ffi.callback`` goes through a libffi closure that converts every
  argument generically; API mode is cheaper per record (table above) on the
  path that carries 100k+ events/s.
* va_list: libbpf's print callback receives a ``va_list``. API mode formats
  it with ``vsnprintf`` in a few lines of C (portable); ABI mode would have
  to pass the ``va_list`` on to libc's ``vsnprintf`` as an opaque pointer,
  which is only correct on ABIs where ``va_list`` is an array type
  (x86_64 yes, others not guaranteed).
* type checking at build time: "..." in the cdef lets the C compiler fill
  in struct layouts (``bpf_map_info``, ``btf_type``) and constant values
  from libbpf's own headers, and libbpf's ``static inline`` BTF helpers
  become callable. Nothing is a hand-copied offset.
* cost: a C compiler, python3-dev and libbpf-dev at install time, which the
  BPF build needs anyway. ``pip install -e .`` builds it (setup.py,
  ``cffi_modules``); a missing or stale extension raises
  :class:`BindingNotBuiltError` with the command to run.
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

"""cffi builder of the compiled libbpf binding (API mode).

Referenced from setup.py as ``cffi_modules=["agent/libbpf/_build.py:ffibuilder"]``,
so ``pip install -e .`` compiles ``agent._libbpf_cffi`` against the system
libbpf (libbpf-dev). Run directly (``python agent/libbpf/_build.py``) to
build in place without pip.
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

from cffi import FFI


def _load_cdef() -> ModuleType:
    # Loaded by path: cffi executes this file outside the package, and the
    # package cannot be imported before the extension exists.
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_cdef.py")
    spec = importlib.util.spec_from_file_location("_rsa_libbpf_cdef", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_cdef = _load_cdef()

ffibuilder = FFI()
ffibuilder.cdef(_cdef.CDEF)
ffibuilder.set_source(
    _cdef.MODULE_NAME,
    f'#define RSA_BINDING_DIGEST "{_cdef.DIGEST}"\n' + _cdef.SHIM_SOURCE,
    libraries=["bpf"],
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ffibuilder.compile(tmpdir=os.path.join(root, "build", "cffi"), verbose=True)

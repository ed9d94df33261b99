"""An attached program: a ``struct bpf_link`` owned by Python."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ._ffi import ffi, lib
from .errors import BpfError

__all__ = ["Link"]


class Link:
    """A program attachment; closing it (``close``/``detach``) detaches it.

    Made by :meth:`Program.attach`; the owning object closes its remaining
    links when it is closed itself.
    """

    def __init__(self, ptr: Any, program: str, on_close: Callable[[Link], None] | None = None) -> None:
        self._ptr = ptr
        self.program = program
        self._on_close = on_close

    @property
    def closed(self) -> bool:
        return bool(self._ptr == ffi.NULL)

    @property
    def fd(self) -> int:
        return int(lib.bpf_link__fd(self._live("link fd")))

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin in bpffs: the attachment then outlives this process."""
        rc = lib.bpf_link__pin(self._live("pin link"), os.fsencode(path))
        if rc < 0:
            raise BpfError(f"pin link {self.program}", -rc, where=f"pin link {self.program} at {os.fspath(path)}")

    def unpin(self) -> None:
        rc = lib.bpf_link__unpin(self._live("unpin link"))
        if rc < 0:
            raise BpfError(f"unpin link {self.program}", -rc)

    def close(self) -> None:
        """Detach and free (``bpf_link__destroy``); idempotent."""
        ptr, self._ptr = self._ptr, ffi.NULL
        if ptr == ffi.NULL:
            return
        lib.bpf_link__destroy(ptr)
        if self._on_close is not None:
            self._on_close(self)
            self._on_close = None

    detach = close

    def _live(self, op: str) -> Any:
        if self._ptr == ffi.NULL:
            raise BpfError(f"{op} {self.program}", 9, reason="link is closed")  # EBADF
        return self._ptr

    def __enter__(self) -> Link:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Link {self.program} {'closed' if self.closed else 'attached'}>"

    def __del__(self) -> None:
        # Safety net only: correct code closes links explicitly or via the object.
        if getattr(self, "_ptr", ffi.NULL) != ffi.NULL:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=1)
            self.close()

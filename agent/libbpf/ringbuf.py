"""BPF ring buffer consumption with a Python callback per record.

The hot path is: libbpf's C loop -> the compiled ``extern "Python"``
trampoline ``_rsa_ringbuf_sample`` -> one Python call of the consumer's
callback with ``(data, size)``: ``data`` is a ``void *`` cdata pointing into
the ring buffer, valid only during the callback. Nothing is copied or
allocated per record unless the callback asks for it: cast ``data`` to the
event struct (``ffi.cast("struct event *", data)``, any FFI instance), or
call :func:`record_bytes` for a copy that outlives the callback.

A callback returns None (or a non-negative int) to go on, a negative int to
stop the current poll/consume, which then returns that value (as libbpf
does). An exception stops the poll/consume and is re-raised from it; the
record that raised counts as consumed.
"""

from __future__ import annotations

import errno
import select
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._ffi import ffi, lib
from .errors import BpfError

if TYPE_CHECKING:
    from .maps import Map

__all__ = ["RingBuffer", "SampleCallback", "record_bytes"]

SampleCallback = Callable[[Any, int], "int | None"]


def record_bytes(data: Any, size: int) -> bytes:
    """Copy a record out of the ring buffer (only when you need to keep it)."""
    return bytes(ffi.buffer(data, size)[:])


class _Slot:
    """What the C trampoline's ``ctx`` points at: one map's callback."""

    __slots__ = ("error", "fn", "name", "stop")

    def __init__(self, fn: SampleCallback, name: str) -> None:
        self.fn = fn
        self.name = name
        self.error: BaseException | None = None
        self.stop: int | None = None


@ffi.def_extern(name="_rsa_ringbuf_sample")
def _rsa_ringbuf_sample(ctx: Any, data: Any, size: int, _from_handle: Any = ffi.from_handle) -> Any:
    slot = _from_handle(ctx)
    try:
        rv = slot.fn(data, size)
    except BaseException as exc:  # noqa: BLE001 - handed back to the poll() caller
        slot.error = exc
        return -1
    if rv is None:
        return 0
    if rv < 0:
        slot.stop = rv
    return rv


class RingBuffer:
    """``ring_buffer__new``/``__add``/``__poll``/``__consume``/``__free``.

    One RingBuffer can drain several ring-buffer maps (``add``), each with
    its own callback. Not thread-safe: poll it from one thread. Closed with
    the object that owns its first map, if not before.
    """

    def __init__(self, source: Map, callback: SampleCallback) -> None:
        self._slots: list[_Slot] = []
        self._handles: list[Any] = []
        self._ptr: Any = ffi.NULL
        self._owners: list[Any] = []
        slot, handle = self._slot(callback, source.name)
        ptr = lib.ring_buffer__new(source.fd, lib._rsa_ringbuf_sample, handle, ffi.NULL)
        if ptr == ffi.NULL:
            raise BpfError(f"ring buffer new {source.name}", ffi.errno)
        self._ptr = ptr
        self._keep(slot, handle, source)

    def add(self, source: Map, callback: SampleCallback) -> None:
        """Also drain ``source`` (another ring-buffer map) into ``callback``."""
        op = f"ring buffer add {source.name}"
        slot, handle = self._slot(callback, source.name)
        rc = lib.ring_buffer__add(self._live(op), source.fd, lib._rsa_ringbuf_sample, handle)
        if rc < 0:
            raise BpfError(op, -rc)
        self._keep(slot, handle, source)

    def poll(self, timeout_ms: int = 100) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for records and consume them.

        Returns the number of records consumed (0 on timeout or signal).
        """
        rc = lib.ring_buffer__poll(self._live("ring buffer poll"), timeout_ms)
        return rc if rc >= 0 else self._failed("ring buffer poll", rc)

    def wait(self, timeout_ms: int = 100) -> bool:
        """Wait up to ``timeout_ms`` for a record in any of the rings, consuming
        nothing: ``consume()`` then reads the rings in the order they were
        added (``poll()`` reads them in the order epoll reports them)."""
        waiter = select.poll()
        waiter.register(self.fileno(), select.POLLIN)
        return bool(waiter.poll(timeout_ms))

    def consume(self) -> int:
        """Consume whatever is available now, without waiting."""
        rc = lib.ring_buffer__consume(self._live("ring buffer consume"))
        return rc if rc >= 0 else self._failed("ring buffer consume", rc)

    def fileno(self) -> int:
        """The epoll fd: readable when a record is available (for selectors/asyncio)."""
        return int(lib.ring_buffer__epoll_fd(self._live("ring buffer epoll fd")))

    @property
    def closed(self) -> bool:
        return bool(self._ptr == ffi.NULL)

    def close(self) -> None:
        ptr, self._ptr = self._ptr, ffi.NULL
        if ptr == ffi.NULL:
            return
        lib.ring_buffer__free(ptr)
        for owner in self._owners:
            owner._forget(self)
        self._owners.clear()
        self._handles.clear()

    def __enter__(self) -> RingBuffer:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ",".join(s.name for s in self._slots)
        return f"<RingBuffer {names} {'closed' if self.closed else 'open'}>"

    # -- helpers --------------------------------------------------------
    def _slot(self, callback: SampleCallback, name: str) -> tuple[_Slot, Any]:
        slot = _Slot(callback, name)
        return slot, ffi.new_handle(slot)

    def _keep(self, slot: _Slot, handle: Any, source: Map) -> None:
        self._slots.append(slot)
        self._handles.append(handle)  # the C side holds only the raw pointer
        owner = source._owner
        if owner not in self._owners:
            owner._adopt(self)
            self._owners.append(owner)

    def _live(self, op: str) -> Any:
        if self._ptr == ffi.NULL:
            raise BpfError(op, errno.EBADF, reason="ring buffer is closed")
        return self._ptr

    def _failed(self, op: str, rc: int) -> int:
        stopped = None
        for slot in self._slots:
            error, slot.error = slot.error, None
            if error is not None:
                raise error
            if slot.stop is not None:
                stopped, slot.stop = slot.stop, None
        if stopped is not None:
            return stopped
        if rc == -errno.EINTR:
            return 0  # a signal: let Python run its handler, the caller polls again
        raise BpfError(op, -rc)

    def __del__(self) -> None:
        if getattr(self, "_ptr", ffi.NULL) != ffi.NULL:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=1)
            self.close()

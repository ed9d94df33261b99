"""Typed errors of the libbpf binding.

Messages chain their context in lower case, cilium/ebpf style::

    load object probe.bpf.o: program handle_exec: permission denied (errno 13)

``op`` names the operation that failed ("load program handle_exec",
"attach program x", "map update events"); ``errno`` is the kernel's or
libbpf's error number.
"""

from __future__ import annotations

import errno as _errno
from typing import Any
import os

__all__ = ["BpfError", "NotSupportedError", "VerifierError", "strerror"]


def strerror(code: int) -> str:
    """The lower-case message of an errno value (libbpf's 524 included)."""
    if code == 524:  # ENOTSUPP, kernel-internal, leaks out of the bpf syscall
        return "operation not supported (enotsupp)"
    return os.strerror(code).lower()


class BpfError(OSError):
    """A libbpf or bpf(2) operation failed.

    ``op`` is the failed operation, ``errno`` its error number; ``where`` is
    the chained human context printed before the reason (defaults to ``op``).
    """

    op: str
    where: str

    def __init__(self, op: str, code: int, *, where: str | None = None, reason: str | None = None) -> None:
        if code <= 0:
            code = _errno.EINVAL if code == 0 else -code
        super().__init__(code, reason if reason is not None else strerror(code))
        self.op = op
        self.where = where if where is not None else op

    def __str__(self) -> str:
        return f"{self.where}: {self.strerror} (errno {self.errno})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__.copy(), self.errno, self.strerror))


def _rebuild(cls: type[BpfError], state: dict[str, object], code: int, reason: str) -> BpfError:
    err = cls.__new__(cls)
    OSError.__init__(err, code, reason)
    err.__dict__.update(state)
    return err


class NotSupportedError(BpfError):
    """The running kernel (or its configuration) lacks ``feature``."""

    feature: str

    def __init__(
        self, op: str, code: int, feature: str, *, where: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(op, code, where=where, reason=reason)
        self.feature = feature

    def __str__(self) -> str:
        return f"{self.where}: {self.feature} not supported by this kernel: {self.strerror} (errno {self.errno})"


class VerifierError(BpfError):
    """The verifier rejected ``program``.

    ``short`` holds the last meaningful lines of the verifier log (what
    ``str()`` shows), ``log`` the full log exactly as the kernel wrote it.
    """

    program: str
    log: str
    short: str

    def __init__(self, op: str, code: int, program: str, log: str, *, where: str | None = None) -> None:
        super().__init__(op, code, where=where)
        self.program = program
        self.log = log
        self.short = summarize_verifier_log(log)

    def __str__(self) -> str:
        total = len([line for line in self.log.splitlines() if line.strip()])
        shown = len(self.short.splitlines())
        more = f" ({total - shown} more line(s) in .log)" if total > shown else ""
        return f"{self.where}: {self.strerror} (errno {self.errno}): {self.short}{more}"


# Lines that close every verifier log and say nothing about the rejection.
_NOISE = (
    "processed ",
    "verification time",
    "stack depth",
    "-- begin prog load log",
    "-- end prog load log",
)


def summarize_verifier_log(log: str, lines: int = 3) -> str:
    """The last ``lines`` meaningful lines of a verifier log, joined by "; "."""
    kept = [
        line.strip()
        for line in log.splitlines()
        if line.strip() and not line.strip().lower().startswith(_NOISE)
    ]
    return "; ".join(kept[-lines:]) if kept else "(empty verifier log)"

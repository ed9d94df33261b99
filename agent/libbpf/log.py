"""libbpf's own log output, routed into Python ``logging``.

libbpf prints through one process-wide callback; the C shim formats the
``va_list`` and calls :func:`_rsa_print` with the finished line. Lines go to
the ``agent.libbpf.libbpf`` logger (WARN -> WARNING, INFO -> INFO, DEBUG ->
DEBUG) and, while a :func:`capture` is active on the calling thread, into
that capture too: the loader uses it to pick the verifier log and the name
of the failing program out of ``bpf_object__load``'s output.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ._ffi import ffi, lib

__all__ = ["LIBBPF_LOGGER", "LogCapture", "VerifierStats", "capture"]

LIBBPF_LOGGER = logging.getLogger("agent.libbpf.libbpf")

_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}
_PREFIX = "libbpf: "
_LOAD_LOG = re.compile(
    r"prog '(?P<prog>[^']+)': -- BEGIN PROG LOAD LOG --\n(?P<log>.*?)-- END PROG LOAD LOG --", re.S
)
_MAP_FAILED = re.compile(r"map '(?P<map>[^']+)': failed to create")
_LOAD_FAILED = re.compile(r"prog '(?P<prog>[^']+)': (?:BPF program load failed|failed to load)")


_STATS_TIME = re.compile(r"^verification time (?P<usec>\d+) usec$", re.M)
_STATS_INSNS = re.compile(r"^processed (?P<insns>\d+) insns .*?total_states (?P<states>\d+)", re.M)


@dataclass(frozen=True)
class VerifierStats:
    """What the verifier reports for a program loaded at log level 4 (BPF_LOG_STATS)."""

    program: str
    usec: int
    insns: int
    states: int


@dataclass
class LogCapture:
    """libbpf lines printed on one thread while the capture was active."""

    demote: bool = False
    lines: list[tuple[int, str]] = field(default_factory=list)

    def text(self) -> str:
        return "".join(line for _, line in self.lines)

    def failed_program(self) -> str | None:
        """The program libbpf last reported as failing to load, if any."""
        found = None
        for match in _LOAD_FAILED.finditer(self.text()):
            found = match.group("prog")
        return found

    def failed_map(self) -> str | None:
        """The map libbpf last reported as failing to be created, if any."""
        found = None
        for match in _MAP_FAILED.finditer(self.text()):
            found = match.group("map")
        return found

    def verifier_log(self, program: str) -> str | None:
        """The verifier log libbpf printed for ``program``, if it printed one."""
        log = None
        for match in _LOAD_LOG.finditer(self.text()):
            if match.group("prog") == program:
                log = match.group("log")
        return log

    def verifier_stats(self) -> list[VerifierStats]:
        """The statistics of every program whose verifier log libbpf printed."""
        out = []
        for match in _LOAD_LOG.finditer(self.text()):
            text = match.group("log")
            t, n = _STATS_TIME.search(text), _STATS_INSNS.search(text)
            if t and n:
                out.append(VerifierStats(match.group("prog"), int(t.group("usec")), int(n.group("insns")),
                                         int(n.group("states"))))
        return out


_local = threading.local()


@contextmanager
def capture(*, demote: bool = False) -> Iterator[LogCapture]:
    """Record libbpf's lines on this thread; ``demote`` logs warnings at DEBUG.

    Captures nest: the innermost receives the lines, and a demoting capture
    also demotes what its inner captures log.
    """
    outer: LogCapture | None = getattr(_local, "capture", None)
    current = LogCapture(demote=demote or (outer is not None and outer.demote))
    _local.capture = current
    try:
        yield current
    finally:
        if outer is not None:
            outer.lines.extend(current.lines)
        _local.capture = outer


@ffi.def_extern(name="_rsa_print")
def _rsa_print(level: int, msg: object) -> None:
    text = ffi.string(msg).decode("utf-8", "replace")
    if text.startswith(_PREFIX):
        text = text[len(_PREFIX) :]
    current: LogCapture | None = getattr(_local, "capture", None)
    pylevel = _LEVELS.get(level, logging.DEBUG)
    if current is not None:
        current.lines.append((level, text))
        if current.demote:
            pylevel = logging.DEBUG
    if LIBBPF_LOGGER.isEnabledFor(pylevel):
        LIBBPF_LOGGER.log(pylevel, "%s", text.rstrip("\n"))


lib.rsa_install_print()

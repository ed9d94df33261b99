"""Kernel timestamps to wall-clock time.

BPF stamps events with CLOCK_BOOTTIME (``bpf_ktime_get_boot_ns``), which
keeps counting across suspend and never jumps; task start times are on the
same clock (``start_boottime``). Event documents carry nanoseconds since the
epoch, so the agent adds the offset between CLOCK_REALTIME and
CLOCK_BOOTTIME, re-measured periodically to follow NTP adjustments.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

_REMEASURE_NS = 10 * 1_000_000_000


def _measure_offset() -> int:
    """realtime - boottime, in ns, taking the narrowest of a few samples."""
    best: tuple[int, int] | None = None
    for _ in range(3):
        before = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        real = time.time_ns()
        after = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        width = after - before
        offset = real - (before + width // 2)
        if best is None or width < best[0]:
            best = (width, offset)
    assert best is not None
    return best[1]


@dataclass
class BootClock:
    """Converts CLOCK_BOOTTIME nanoseconds into nanoseconds since the epoch."""

    offset_ns: int = field(default_factory=_measure_offset)
    _measured_at: int = field(default_factory=lambda: time.clock_gettime_ns(time.CLOCK_BOOTTIME))

    def to_epoch(self, boot_ns: int) -> int:
        if boot_ns - self._measured_at > _REMEASURE_NS:
            self.offset_ns = _measure_offset()
            self._measured_at = boot_ns
        return boot_ns + self.offset_ns

    @staticmethod
    def boot_now() -> int:
        return time.clock_gettime_ns(time.CLOCK_BOOTTIME)

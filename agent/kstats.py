"""Per-event-type counters kept by the kernel side (map ``type_stats``)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .events.layout import Layout
from .libbpf.maps import Map


@dataclass
class TypeStats:
    seen: int = 0
    dropped_approver: int = 0
    dropped_discarder: int = 0
    sent: int = 0
    lost: int = 0
    compat: int = 0           # 32-bit (compat) calls, not hooked: the opt-in counter

    def add(self, other: TypeStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def read_type_stats(stats_map: Map, layout: Layout, type_names: dict[int, str]) -> dict[str, TypeStats]:
    """Sum the per-CPU counters of every event type that saw anything."""
    ffi = layout.ffi
    out: dict[str, TypeStats] = {}
    for type_id, name in sorted(type_names.items()):
        per_cpu: Any = stats_map.lookup(type_id)
        if not per_cpu:
            continue
        total = TypeStats()
        for raw in per_cpu:
            s = ffi.cast("struct rs_type_stats *", ffi.from_buffer(raw))
            total.add(TypeStats(s.seen, s.dropped_approver, s.dropped_discarder, s.sent, s.lost, s.compat))
        if total.seen or total.sent or total.lost or total.compat:
            out[name] = total
    return out


def format_type_stats(stats: dict[str, TypeStats]) -> str:
    if not stats:
        return "no events"
    parts = []
    for name, s in stats.items():
        parts.append(
            f"{name}: seen={s.seen} sent={s.sent} lost={s.lost}"
            f" dropped_approver={s.dropped_approver} dropped_discarder={s.dropped_discarder}"
            + (f" compat_unhooked={s.compat}" if s.compat else "")
        )
    return "; ".join(parts)

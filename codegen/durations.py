"""Durations written in policies: ``10s``, ``1m30s``, ``500ms``, or seconds as a number."""
from __future__ import annotations

import re

from .lexer import DURATION_UNITS

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(value: object) -> int | None:
    """Nanoseconds, or None when ``value`` is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value * 1_000_000_000) if 0 <= value < 1e12 else None
    if not isinstance(value, str) or not value.strip():
        return None
    text, total, pos = value.strip(), 0.0, 0
    for m in _PART.finditer(text):
        if m.start() != pos:
            return None
        unit = "us" if m.group(2) == "µs" else m.group(2)
        total += float(m.group(1)) * DURATION_UNITS[unit]
        pos = m.end()
    return int(total) if pos == len(text) and pos > 0 else None

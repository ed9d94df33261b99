"""Durations written in policies: ``10s``, ``1m30s``, ``500ms``, or seconds as a number.

Exact (integer arithmetic on the digits, no float rounding or overflow) and
bounded: a duration longer than :data:`codegen.limits.MAX_DURATION_NS` is
refused with its own message, however many digits it has.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

from .limits import MAX_DURATION_NS
from .lexer import DURATION_UNITS

_PART = re.compile(r"([0-9]+)(?:\.([0-9]+))?(ns|us|µs|ms|s|m|h)")
_DIGITS = 30  # more integer digits than any duration within the limit, in any unit
TOO_LONG = "a duration is at most 100 years"


def parse_duration(value: object) -> int | None:
    """Nanoseconds (may exceed the limit: see :func:`duration_problem`), or
    None when ``value`` is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value) or value < 0:
            return None
        seconds = Fraction(value)
        return MAX_DURATION_NS + 1 if seconds > MAX_DURATION_NS else int(seconds * 1_000_000_000)
    if not isinstance(value, str) or not value.strip():
        return None
    text, total, pos = value.strip(), Fraction(0), 0
    for m in _PART.finditer(text):
        if m.start() != pos:
            return None
        whole, frac, unit = m.group(1), m.group(2) or "", m.group(3)
        pos = m.end()
        if len(whole.lstrip("0")) > _DIGITS:
            total = Fraction(MAX_DURATION_NS + 1)
            continue
        frac = frac[:_DIGITS]  # past 30 decimals nothing is left of a nanosecond
        number = Fraction(int(whole)) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)
        total += number * DURATION_UNITS["us" if unit == "µs" else unit]
    if pos != len(text) or pos == 0:
        return None
    return min(int(total), MAX_DURATION_NS + 1)


def too_long(ns: int | None) -> bool:
    return ns is not None and ns > MAX_DURATION_NS

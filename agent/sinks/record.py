"""What the sinks carry: a document serialized once, with its syslog severity.

Every sink gets the same bytes: the document is serialized once by
``Sinks.write`` and only framed differently per destination (a line, a
syslog message, an HTTP batch, a NATS message).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from ..evaluator.event import Lazy, Resolved, ResolvedList, materialize

# RFC 5424 severities, and the names a rule's `severity` (or `priority`) tag
# may use for them: Datadog-style levels and syslog's own names.
SEVERITY_NAMES: dict[str, int] = {
    "emerg": 0, "emergency": 0,
    "alert": 1,
    "critical": 2, "crit": 2,
    "high": 3, "error": 3, "err": 3,
    "medium": 4, "warning": 4, "warn": 4,
    "low": 5, "notice": 5,
    "info": 6, "informational": 6,
    "debug": 7,
}
ALERT_DEFAULT_SEVERITY = 4   # an alert whose rule has no severity tag: warning
EVENT_SEVERITY = 6           # a trace document (no rule): informational


@dataclass(frozen=True, slots=True)
class Record:
    data: bytes       # one JSON document, ASCII, no trailing newline
    severity: int     # 0 (emergency) .. 7 (debug)
    timestamp: int    # ns since the epoch (the event's)
    name: str         # the rule id of an alert, the event type of an event document


def encode(doc: Any) -> bytes:
    """``doc`` as one line of JSON, ASCII only: a raw U+2028 or U+0085 in a
    path would split the line for many line-oriented readers; \\uXXXX
    escapes keep one document per line.

    orjson does the work (bench/README.md, "Alert cost": 5x faster than the
    standard library's encoder on alert documents) and splices the JSON of
    every resolved part (a process image, a chain of ancestors), made once
    and kept on the part, instead of serializing it again in every alert.
    orjson writes UTF-8 and refuses what the standard library takes (integers
    past 64 bits, non-string keys, lone surrogates): such a document, rare,
    is written by the standard library instead, the same JSON."""
    try:
        data = orjson.dumps(doc, default=_part, option=orjson.OPT_PASSTHROUGH_SUBCLASS)
    except orjson.JSONEncodeError:
        data = b""
    if not data or not data.isascii():
        data = json.dumps(materialize(doc), ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return data


def _part(value: Any) -> Any:
    """orjson's hook for what it does not write itself (with subclasses
    passed through): a Lazy value as what it resolves to (the document need
    not be materialized first); resolved parts as their kept JSON; other
    subclasses of dict, list, str, int as the standard library writes them."""
    if value.__class__ is Lazy:
        return value.fn()
    if value.__class__ is Resolved:
        data = value.json
        if data is None:
            data = value.json = encode(dict(value))
        return orjson.Fragment(data)
    if value.__class__ is ResolvedList:
        data = value.json
        if data is None:
            data = value.json = encode(list(value))
        return orjson.Fragment(data)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(doc: dict[str, Any]) -> str:
    """:func:`encode` as text."""
    return encode(doc).decode("ascii")


def severity_of(doc: dict[str, Any]) -> int:
    """The syslog severity of a document: from the rule's `severity` or
    `priority` tag for an alert (a name above or a number 0-7)."""
    tags = doc.get("rule_tags")
    if not isinstance(tags, dict):
        return EVENT_SEVERITY if "rule_id" not in doc else ALERT_DEFAULT_SEVERITY
    for key in ("severity", "priority"):
        value = tags.get(key)
        if value is None:
            continue
        text = str(value).strip().lower()
        if text.isdigit() and int(text) <= 7:
            return int(text)
        if text in SEVERITY_NAMES:
            return SEVERITY_NAMES[text]
    return ALERT_DEFAULT_SEVERITY


def record_of(doc: dict[str, Any]) -> Record:
    name = doc.get("rule_id") or doc.get("type") or "document"
    return Record(encode(doc), severity_of(doc), int(doc.get("timestamp") or 0),
                  str(name)[:255])

"""What the sinks carry: a document serialized once, with its syslog severity.

Every sink gets the same bytes: the document is serialized once by
``Sinks.write`` and only framed differently per destination (a line, a
syslog message, an HTTP batch, a NATS message).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

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


def dumps(doc: dict[str, Any]) -> str:
    # ASCII only: a raw U+2028 or U+0085 in a path would split the line for
    # many line-oriented readers; \uXXXX escapes keep one document per line.
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"))


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
    return Record(dumps(doc).encode("ascii"), severity_of(doc), int(doc.get("timestamp") or 0),
                  str(name)[:255])

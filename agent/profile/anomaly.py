"""What an anomaly alert names: the profile, the kind of anomaly and the new item.

The engine (agent/engine.py) adds ``"anomaly": {"profile": PATH, "profile_id": ID,
"kind": KIND, "new": ITEM}`` to the alert of a rule a profile generated
(agent/profile/rules.py) and counts it in ``rsagent_profile_anomalies_total``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.evaluator.event import child

from .learn import WRITE_FLAGS


def _get(doc: Any, *keys: str) -> Any:
    for key in keys:
        doc = child(doc, key)
        if not isinstance(doc, (dict, list, str, int)):
            return None
    return doc


def new_item(kind: str, doc: dict[str, Any]) -> str:
    """The item the workload had never shown, as one line."""
    if kind == "new_executable":
        return str(_get(doc, "exec", "file", "path") or _get(doc, "process", "file", "path") or "?")
    if kind == "new_arguments":
        exe = _get(doc, "process", "file", "path") or "?"
        argv = _get(doc, "process", "argv")
        args = " ".join(str(a) for a in argv[1:]) if isinstance(argv, list) else ""
        return f"{exe} {args}".rstrip()
    if kind == "new_file":
        flags = _get(doc, "open", "flags")
        mode = "write" if isinstance(flags, int) and flags & WRITE_FLAGS else "read"
        return f"{mode} {_get(doc, 'open', 'file', 'path') or '?'}"
    if kind == "new_dns":
        return str(_get(doc, "dns", "question", "name") or "?")
    if kind == "new_connect":
        ip, port = _get(doc, "connect", "addr", "ip"), _get(doc, "connect", "addr", "port")
        return f"[{ip}]:{port}" if isinstance(ip, str) and ":" in ip else f"{ip}:{port}"
    return str(doc.get("type", "?"))


def anomaly_document(spec: Mapping[str, str], doc: dict[str, Any]) -> dict[str, str]:
    return {**spec, "new": new_item(spec.get("kind", ""), doc)}

"""Helpers shared by the rule compiler tests (pure Python, no kernel needed)."""
from __future__ import annotations

import copy
from typing import Any

from codegen.errors import Diagnostics
from agent.evaluator.event import DocumentEvent
from codegen.policy import CompiledExpression, compile_expression

NOW = 1_764_280_000_123_456_789

OPEN_EVENT: dict[str, Any] = {
    "type": "open", "timestamp": NOW,
    "open": {"flags": 66, "retval": 3,
             "file": {"path": "/etc/my_secrets", "name": "my_secrets", "inode": 1234, "mount_id": 25,
                      "mode": 0o100644, "uid": 0, "gid": 0, "filesystem": "ext4", "in_upper_layer": False}},
    "process": {"pid": 4242, "ppid": 4241, "tid": 4242, "comm": "cat", "uid": 0, "user": "root",
                "created_at": NOW - 10_000_000_000, "argv": ["cat", "/etc/my_secrets"],
                "envp": ["HOME=/root", "PATH=/bin"], "cap_effective": 1 << 21,
                "file": {"path": "/usr/bin/cat", "name": "cat"}, "container": {"id": ""},
                "ancestors": [{"pid": 4241, "comm": "bash", "file": {"path": "/usr/bin/bash"}},
                              {"pid": 1, "comm": "systemd", "file": {"path": "/sbin/init"}}]},
}


def open_event(**overrides: Any) -> dict[str, Any]:
    doc = copy.deepcopy(OPEN_EVENT)
    for dotted, value in overrides.items():
        node = doc
        keys = dotted.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return doc


def compile_ok(text: str, **kwargs: Any) -> CompiledExpression:
    compiled, diags = compile_expression(text, **kwargs)
    assert compiled is not None, "\n".join(d.format() for d in diags)
    return compiled


def errors_of(text: str, **kwargs: Any) -> list[tuple[int, int, str]]:
    """(line, col, message) of every error for an expression."""
    compiled, diags = compile_expression(text, **kwargs)
    return [(d.line, d.col, d.message) for d in diags.errors]


def evaluate(text: str, doc: dict[str, Any] | None = None, **kwargs: Any) -> bool:
    return compile_ok(text, **kwargs).matches(DocumentEvent(copy.deepcopy(doc or OPEN_EVENT)))


def messages(diags: Diagnostics) -> list[str]:
    return [d.message for d in diags]

"""What the kernel's filter maps can hold, checked when a policy is loaded.

The agent fills the approver maps at start (agent/kfilters.py): one entry
per distinct file name key (its length and first ``RS_BASENAME_PREFIX``
bytes) and one bit mask per event type. A policy whose approvers need more
than the maps hold would pass every other check and then fail at
``rsagent run`` start; this reports it at load time instead, at the rule
that goes past the limit, so whatever ``rulec validate`` accepts the agent
loads. The count is an upper bound: each rule's own approvers, whether or
not its event type ends up with approvers (a host filter may drop the rule
that stopped them, at the agent's start).
"""
from __future__ import annotations

import functools
from typing import Any

from .cbackend import type_filter
from .eventtypes import PRODUCED
from .errors import Diagnostics
from .limits import KERNEL_BASENAME_APPROVERS, U64


def kernel_event_types() -> tuple[str, ...]:
    """The event types the agent produces (the one place that names them here)."""
    return tuple(t.name for t in PRODUCED)


@functools.lru_cache(maxsize=1)
def _prefix_len() -> int:
    from agent.events.layout import layout

    return int(layout().const("RS_BASENAME_PREFIX"))


def basename_key(name: str) -> tuple[int, bytes] | None:
    """The approver map key of a file name (None: no file has that name)."""
    raw = name.encode("utf-8", "surrogateescape")
    if not raw or len(raw) > 255 or b"/" in raw or b"\0" in raw:
        return None
    return len(raw), raw[: _prefix_len()]


def check_kernel_maps(rules: Any, diags: Diagnostics) -> None:
    """Errors for rules whose approvers do not fit the kernel's maps.
    ``rules``: rules in policy order (objects with ``id``, ``event_type``, ``ir``, ``position``)."""
    keys: set[tuple[int, bytes]] = set()
    types = frozenset(kernel_event_types())
    reported = False
    for rule in rules:
        if rule.event_type not in types:
            continue
        f = type_filter(rule.event_type, [rule])
        if f.flags_mask not in U64:
            p = rule.position
            diags.error_at(p.file, p.line, p.col, f"rule '{rule.id}': flags mask {f.flags_mask:#x} does not fit "
                                                  f"the kernel's 8-byte approver map")
        for name in f.basenames:
            key = basename_key(name)
            if key is not None:
                keys.add(key)
        if len(keys) > KERNEL_BASENAME_APPROVERS and not reported:
            reported = True
            p = rule.position
            diags.error_at(p.file, p.line, p.col,
                           f"rule '{rule.id}': the policy's rules approve more than {KERNEL_BASENAME_APPROVERS:,} "
                           f"file names in all, what the kernel's approver map holds (docs/secl.md \"Limits\"); "
                           f"use globs, or fewer distinct file names")

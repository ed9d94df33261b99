"""Learning discarders: from an event that matched no rule, prove that its
file — or better one of its parent directories — can never match a rule of
that event type, and tell the kernel (map ``inode_discarders``).

The proof is partial evaluation (codegen.partial) of every rule of the type
with only the file's path known, for each of the file's first
RS_DISCARDER_DEPTH parent directories: the nearest discardable one and the
farthest are pushed (the kernel checks nearest first and stops at the first
hit); the leaf inode is the fallback when no directory qualifies. Insertions are deduplicated and
rate-limited; the kernel keeps them in a bounded LRU map.
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from codegen.cbackend import TypeFilter
from codegen.partial import directory_discardable, is_discarder
from agent.evaluator.ruleset import Ruleset

from .clock import BootClock
from .events.layout import Layout
from .libbpf.object import BpfObject
from .metrics import Registry

log = logging.getLogger(__name__)

DEPTH = 3                       # RS_DISCARDER_DEPTH in filters.h
DECISION_MARGIN_NS = 10_000_000  # decided_at is set this much before the event: conservative vs tombstones


@dataclass
class DiscarderStats:
    pushed_leaf: int = 0
    pushed_parent: int = 0
    rate_limited: int = 0
    duplicates: int = 0
    not_discardable: int = 0
    errors: int = 0


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass(frozen=True)
class DiscarderTarget:
    inode: int
    is_leaf: bool
    path: str          # the file (leaf) or the directory whose descendants it covers
    depth: int = 0     # 0: the file, 1: its directory, 2: the one above...


@dataclass(frozen=True)
class DiscarderPlan:
    """What the agent pushes for an event that matched no rule: nothing
    (``skipped``: the event cannot name a discarder; no targets: some rule
    could match there), or the nearest and farthest discardable parent
    directories, else the file itself."""

    event_type: str
    mount_id: int = 0
    targets: tuple[DiscarderTarget, ...] = ()
    skipped: str | None = None


def discarder_plan(rules: Sequence[Any], doc: dict[str, Any], *, any_parents: bool = False) -> DiscarderPlan:
    """The discarders an unmatched event of ``doc["type"]`` teaches, proved by
    partial evaluation of ``rules`` (that type's) with only the file's path
    known. The kernel sends the parents' inodes only when discarders are on;
    ``any_parents`` (explaining a document recorded without them) considers
    the path's directories anyway, with inode 0 (unknown)."""
    event_type = doc["type"]
    body = doc.get(event_type)
    file = body.get("file", {}) if isinstance(body, dict) else {}
    inode, mount_id, path = file.get("inode", 0), file.get("mount_id", 0), file.get("path", "")
    if not inode or not isinstance(path, str) or not path.startswith("/"):
        return DiscarderPlan(event_type, skipped="no inode or absolute path")
    if "path_raw_b64" in file or file.get("path_truncated"):
        return DiscarderPlan(event_type, skipped="the path is not exact (truncated or not UTF-8)")
    field_name = f"{event_type}.file.path"
    parents: list[int] = list(file.get("parent_inodes", ()))[:DEPTH]
    if any_parents and not parents:
        parents = [0] * min(DEPTH, path.rstrip("/").count("/") - 1)
    directory = path
    dirs = []
    for _ in parents:
        directory = posixpath.dirname(directory)
        dirs.append(directory)
    # The nearest discardable directory (the kernel checks nearest first:
    # files of a hot directory are dropped after two steps) and the
    # farthest one (the widest cover).
    discardable = [d for d in range(1, len(dirs) + 1)
                   if (parents[d - 1] or any_parents) and directory_discardable(rules, field_name, dirs[d - 1])]
    if discardable:
        return DiscarderPlan(event_type, mount_id, tuple(
            DiscarderTarget(parents[depth - 1], False, dirs[depth - 1], depth)
            for depth in sorted({discardable[0], discardable[-1]})))
    if is_discarder(rules, field_name, path):
        return DiscarderPlan(event_type, mount_id, (DiscarderTarget(inode, True, path),))
    return DiscarderPlan(event_type, mount_id)


class DiscarderLearner:
    def __init__(self, obj: BpfObject, layout: Layout, ruleset: Ruleset, filters: dict[str, TypeFilter],
                 type_ids: dict[str, int], clock: BootClock, *, rate: float = 500.0,
                 dedup_size: int = 8192, metrics: Registry | None = None,
                 stats: DiscarderStats | None = None) -> None:
        """``stats``: the counters of the learner this one replaces (a reload
        handover), which go on counting (and stay the registered metric)."""
        self._map = obj.map("inode_discarders")
        self._revision = obj.map("discarders_revision")
        self._ffi = layout.ffi
        self._ruleset = ruleset
        self._types = {t for t, f in filters.items() if f.discard}
        self._type_ids = type_ids
        self._clock = clock
        self._bucket = TokenBucket(rate, rate, rate)
        self._recent: OrderedDict[tuple[int, int, int, int], None] = OrderedDict()
        self._dedup_size = dedup_size
        self._key = self._ffi.new("struct rs_discarder_key *")
        self._value = self._ffi.new("struct rs_discarder_value *")
        self.stats = stats if stats is not None else DiscarderStats()
        if metrics is not None and stats is None:
            metrics.callback("discarders_total", "discarders the agent pushed to the kernel (leaf, parent) or did "
                             "not (rate limited, duplicate, not discardable, map error)", "counter", ("outcome",),
                             lambda: list(vars(self.stats).items()))

    def reset(self, ruleset: Ruleset, filters: dict[str, TypeFilter]) -> None:
        """A new policy (the kernel's revision moved: every entry is stale)."""
        self._ruleset = ruleset
        self._types = {t for t, f in filters.items() if f.discard}
        self._recent.clear()

    def learn(self, doc: dict[str, Any]) -> None:
        """Called with an event document that matched no rule."""
        event_type = doc["type"]
        if event_type not in self._types:
            return
        plan = discarder_plan(self._ruleset.rules_for(event_type), doc)
        if plan.skipped:
            return
        if not plan.targets:
            self.stats.not_discardable += 1
        for target in plan.targets:
            self._push(event_type, target.inode, plan.mount_id, int(target.is_leaf), doc["timestamp"])

    def _push(self, event_type: str, inode: int, mount_id: int, is_leaf: int, event_epoch_ns: int) -> None:
        type_id = self._type_ids[event_type]
        dedup = (inode, mount_id, is_leaf, type_id)
        if dedup in self._recent:
            self._recent.move_to_end(dedup)
            self.stats.duplicates += 1
            return
        if not self._bucket.take():
            self.stats.rate_limited += 1
            return
        key, value = self._key, self._value
        key.inode, key.mount_id, key.is_leaf = inode, mount_id, is_leaf
        key_bytes = bytes(self._ffi.buffer(key))
        mask = 1 << type_id
        try:
            existing = self._map.lookup(key_bytes)
            if isinstance(existing, bytes):
                mask |= self._ffi.cast("struct rs_discarder_value *", self._ffi.from_buffer(existing)).event_mask
            rev = self._revision.lookup(0)
            value.event_mask = mask
            value.decided_at = max(0, event_epoch_ns - self._clock.offset_ns - DECISION_MARGIN_NS)
            value.revision = int.from_bytes(rev, "little") if isinstance(rev, bytes) else 0
            self._map.update(key_bytes, bytes(self._ffi.buffer(value)))
        except OSError as exc:
            self.stats.errors += 1
            log.debug("cannot push discarder %s: %s", dedup, exc)
            return
        self._recent[dedup] = None
        if len(self._recent) > self._dedup_size:
            self._recent.popitem(last=False)
        if is_leaf:
            self.stats.pushed_leaf += 1
        else:
            self.stats.pushed_parent += 1

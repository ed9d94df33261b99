"""Capture files: what the probes sent, for replay (`rsagent record`,
`rsagent run --record`, `rulec replay`).

A capture is gzip-compressed JSON lines (stdlib gzip: no dependency; zstd
would save about a third more, not worth a native package for a tuning
tool). Line 1 is the header, then one line per item, in the order the
consumer saw them:

    {"kind": "rsagent-capture", "version": 1, "host": {...}, "started": NS, "filters": ..., ...}
    {"k": "e", "d": DOCUMENT}          an event document, materialized (process context included)
    {"k": "c", "t": NS, "kernel": {}}  the kernel counters (type -> seen/sent/lost/dropped_*), every second
    {"k": "f", "t": NS, "generation": N, "hook_set", "event_types", "filters"}
                                       the in-kernel filters from here on: after each reload of
                                       `run`'s policy, and at start when the header's hook set
                                       failed to load and another one came up
    {"k": "end", "ended": NS, ...}     the trailer: final counters, what was not recorded and why

The documents are exactly those the rule engine is handed (the resolve
stage's output, every Lazy resolved at the moment the engine read it), so
replaying them through the same Engine raises the same alerts.

Bounded: the writer stops recording once the compressed file nears
``max_bytes`` (the trailer says so and counts the events left out), and
calls ``on_full`` (`rsagent record` stops then; `rsagent run --record`
keeps running without recording). The file is created 0600, never through
a symlink (agent/safefile.py); a sync flush every second keeps what was
written so far readable if the agent dies.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import platform
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from agent.evaluator.event import materialize

from .kstats import TypeStats
from .safefile import open_truncate

log = logging.getLogger(__name__)

KIND = "rsagent-capture"
VERSION = 1
DEFAULT_MAX_BYTES = 1 << 30
MIN_MAX_BYTES = 64 << 10
FLUSH_INTERVAL = 1.0   # seconds between sync flushes (and counter snapshots)

Counters = Callable[[], dict[str, TypeStats]]


class CaptureError(ValueError):
    """A file that is not a capture this version can read."""


def agent_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rsagent")
    except PackageNotFoundError:
        return "unknown"


def header(*, command: str, hook_set: str, event_types: list[str] | None,
           filters: dict[str, Any] | None) -> dict[str, Any]:
    """The first line of a capture. ``filters``: None when the kernel sent
    everything it saw, else what the policy's in-kernel filters were."""
    from codegen.hostinfo import host_document

    uname = os.uname()
    return {
        "kind": KIND, "version": VERSION, "agent_version": agent_version(), "command": command,
        "host": {"hostname": uname.nodename, "kernel": uname.release, "machine": uname.machine,
                 "python": platform.python_version()},
        "host_document": host_document(),   # what rule `filters:` evaluate on at replay
        "hook_set": hook_set, "event_types": event_types, "started": time.time_ns(),
        "filters": filters,
    }


def filters_note(filters: dict[str, Any] | None) -> str:
    if not filters:
        return "none: the capture holds every event the probes saw"
    return (f"on (policy {', '.join(filters.get('policy', [])) or '?'}; discarders "
            f"{'on' if filters.get('discarders') else 'off'}): the capture only holds what they let through; "
            "a policy watching other events needs a capture made by `rsagent record` without --policy")


class _Counting:
    """The raw file under the gzip stream, counting the bytes written."""

    def __init__(self, fd: int) -> None:
        self.file = os.fdopen(fd, "wb", buffering=0)
        self.written = 0

    def write(self, data: bytes) -> int:
        n = self.file.write(data) or 0
        self.written += n
        return n

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


@dataclass
class WriterStats:
    events: int = 0
    not_recorded: int = 0         # events after the size limit was reached
    first_event: int | None = None
    last_event: int | None = None
    full: bool = False


class CaptureWriter:
    def __init__(self, path: Path, head: dict[str, Any], *, max_bytes: int = DEFAULT_MAX_BYTES,
                 on_full: Callable[[], None] | None = None, counters: Counters | None = None) -> None:
        if max_bytes < MIN_MAX_BYTES:
            raise ValueError(f"--max-size {max_bytes}: a capture needs at least {MIN_MAX_BYTES >> 10} KiB")
        self.path = path
        self.max_bytes = max_bytes
        # room left for the trailer (the final counters) once recording stops
        self._reserve = min(16 << 10, max_bytes // 4)
        self._pending = 0        # bytes given to deflate since the last sync flush (it may hold them all)
        self.on_full = on_full or (lambda: None)
        self.counters = counters
        self.stats = WriterStats()
        self._raw = _Counting(open_truncate(path))
        self._gz: BinaryIO = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6)  # type: ignore[assignment]
        self._next_flush = time.monotonic() + FLUSH_INTERVAL
        self._closed = False
        self._line(head)
        self._sync()

    @property
    def bytes_written(self) -> int:
        return self._raw.written

    def _line(self, item: dict[str, Any]) -> None:
        data = json.dumps(item, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"
        self._gz.write(data)
        self._pending += len(data)

    def _sync(self) -> None:
        self._gz.flush(zlib.Z_SYNC_FLUSH)  # type: ignore[call-arg]
        self._pending = 0

    def event(self, doc: dict[str, Any]) -> None:
        """Record one event document (resolving what is still lazy in it)."""
        st = self.stats
        if st.full or self._closed:
            st.not_recorded += 1
            return
        materialize(doc)
        self._line({"k": "e", "d": doc})
        st.events += 1
        ts = doc.get("timestamp")
        if isinstance(ts, int):
            if st.first_event is None:
                st.first_event = ts
            st.last_event = ts
        # what is in the file plus what deflate may still hold (at most what it was given)
        if self._raw.written + self._pending >= self.max_bytes - self._reserve:
            self._sync()
        if self._raw.written >= self.max_bytes - self._reserve:
            st.full = True
            log.warning("capture %s: reached --max-size (%d bytes) after %d events; recording stopped "
                        "(later events are counted, not recorded)", self.path, self.max_bytes, st.events)
            self.on_full()

    def filters(self, *, generation: int, hook_set: str, event_types: list[str] | None,
                filters: dict[str, Any] | None) -> None:
        """From here on, the kernel sends what these filters let through
        (a reload; a hook set fallback at start)."""
        if self._closed:
            return
        self._line({"k": "f", "t": time.time_ns(), "generation": generation, "hook_set": hook_set,
                    "event_types": event_types, "filters": filters})
        self._sync()
        log.info("capture %s: in-kernel filters of generation %d recorded", self.path, generation)

    def tick(self) -> None:
        """Between batches: every second, the counters and a sync flush."""
        if self._closed or time.monotonic() < self._next_flush:
            return
        self._next_flush = time.monotonic() + FLUSH_INTERVAL
        if self.counters is not None and not self.stats.full:
            self._line({"k": "c", "t": time.time_ns(), "kernel": _stats_json(self.counters())})
        self._sync()

    def close(self, kernel: dict[str, TypeStats] | None = None, **extra: Any) -> None:
        """Write the trailer (final kernel counters, what was left out) and close."""
        if self._closed:
            return
        self._closed = True
        st = self.stats
        trailer = {"k": "end", "ended": time.time_ns(), "events": st.events, "not_recorded": st.not_recorded,
                   "full": st.full, "first_event": st.first_event, "last_event": st.last_event,
                   "kernel": _stats_json(kernel or {}), **extra}
        try:
            self._line(trailer)
            self._gz.close()
        finally:
            self._raw.close()
        log.info("capture %s: %d events, %d bytes%s", self.path, st.events, self.path.stat().st_size,
                 f", {st.not_recorded} not recorded (size limit)" if st.not_recorded else "")


def _stats_json(stats: dict[str, TypeStats]) -> dict[str, dict[str, int]]:
    return {name: dict(vars(s)) for name, s in sorted(stats.items())}


# --- reading ------------------------------------------------------------------------

@dataclass
class CaptureReader:
    """Streams a capture: ``header`` at once, the documents from ``events()``;
    once they are read, ``trailer`` (None if the recorder died before
    writing it), the last ``counters`` and any ``problems``."""

    path: Path
    header: dict[str, Any] = field(default_factory=dict)
    trailer: dict[str, Any] | None = None
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    # the "f" items: the in-kernel filters from each one's time on (reloads)
    filter_changes: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    read: int = 0

    def __post_init__(self) -> None:
        self._file = gzip.open(self.path, "rb")
        try:
            first = self._file.readline()
        except gzip.BadGzipFile:
            self._file.close()
            raise CaptureError(f"{self.path}: not an rsagent capture (not gzip-compressed)") from None
        except (EOFError, OSError) as exc:
            self._file.close()
            raise CaptureError(f"{self.path}: cannot read the capture header: {exc}") from None
        try:
            head = json.loads(first)
        except (json.JSONDecodeError, UnicodeDecodeError):
            head = None
        if not isinstance(head, dict) or head.get("kind") != KIND:
            self._file.close()
            raise CaptureError(f"{self.path}: not an rsagent capture (no capture header on line 1)")
        version = head.get("version")
        if not isinstance(version, int) or version > VERSION:
            self._file.close()
            raise CaptureError(f"{self.path}: capture format version {version!r}; this rulec reads up to "
                               f"{VERSION} (upgrade rsagent)")
        self.header = head

    def events(self) -> Iterator[dict[str, Any]]:
        line_no = 1
        try:
            for line in self._file:
                line_no += 1
                try:
                    item = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    self.problems.append(f"{self.path}: line {line_no}: not JSON ({exc}); skipped")
                    continue
                kind = item.get("k") if isinstance(item, dict) else None
                if kind == "e" and isinstance(item.get("d"), dict):
                    self.read += 1
                    yield item["d"]
                elif kind == "c":
                    self.counters = item.get("kernel") or {}
                elif kind == "f":
                    # event_index: the first event these filters let through
                    self.filter_changes.append({**item, "event_index": self.read})
                elif kind == "end":
                    self.trailer = item
                    self.counters = item.get("kernel") or self.counters
                else:
                    self.problems.append(f"{self.path}: line {line_no}: unknown item; skipped")
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            self.problems.append(f"{self.path}: the capture ends abruptly after {self.read} events ({exc}): "
                                 "the recorder was stopped without closing it; replaying what was written")
        finally:
            self._file.close()
        if self.trailer is None and not self.problems:
            self.problems.append(f"{self.path}: no trailer: the recorder did not finish (killed?) or is still "
                                 f"running; {self.read} events read")

    def close(self) -> None:
        self._file.close()


def recording(writer: CaptureWriter, consumer: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """A consumer recording each document, then handing it on (same moment,
    same document: the engine evaluates what the capture holds)."""
    record = writer.event

    def consume(doc: dict[str, Any]) -> None:
        record(doc)
        consumer(doc)
    return consume

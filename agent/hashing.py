"""File hashes for the ``hash`` action and the ``*.file.hashes`` fields
(docs/secl.md "File hashes").

A :class:`Hasher` computes the digests of one file (sha256 by default;
sha1 and md5 when the agent is asked for them, ``--hash-algorithms``),
bounded: a regular file only (opened ``O_NOFOLLOW``, never a FIFO or a
device), at most ``max_bytes`` long, at most ``rate`` new computations per
second (a token bucket; a cached result costs nothing), each result cached
per (device, inode, mtime, size, ctime) so a file is read again only once it
changed. Every request is counted by result in ``rsagent_file_hashes_total``
(computed, cached, too_big, rate_limited, error).

The ``hash`` action runs in a :class:`HashWorker` thread, off the event
path: the alert waits for its hashes there (bounded queue; full, the alert
goes out at once with the action ``rate_limited``). A rule that reads
``*.file.hashes`` in its expression needs the value to decide, so the field
is computed when the rule reads it, with the same bounds and cache (our
decision, as the reference agent's field resolver: a rule that does not
read it never pays).
"""
from __future__ import annotations

import collections
import hashlib
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .metrics import Registry

log = logging.getLogger(__name__)

ALGORITHMS = ("sha256", "sha1", "md5")
RESULTS = ("computed", "cached", "too_big", "rate_limited", "error")
CHUNK = 1 << 20


@dataclass(frozen=True)
class HashConfig:
    algorithms: tuple[str, ...] = ("sha256",)
    max_bytes: int = 64 << 20      # larger files are not hashed (too_big)
    rate: float = 100.0            # new computations per second (burst: as many)
    cache_entries: int = 4096
    queue: int = 1000              # hash actions waiting for the worker

    def __post_init__(self) -> None:
        unknown = [a for a in self.algorithms if a not in ALGORITHMS]
        if unknown or not self.algorithms:
            raise ValueError(f"hash algorithms: {', '.join(unknown) or 'none given'} "
                             f"(expected some of: {', '.join(ALGORITHMS)})")


def parse_algorithms(text: str) -> tuple[str, ...]:
    """``--hash-algorithms sha256,md5``; ValueError naming what is wrong."""
    names = tuple(dict.fromkeys(a.strip().lower() for a in text.split(",") if a.strip()))
    HashConfig(algorithms=names)
    return names


@dataclass(frozen=True)
class HashResult:
    """``status`` is one of :data:`RESULTS`; ``hashes`` ``["sha256:<hex>", ...]``."""

    status: str
    hashes: tuple[str, ...] = ()
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.hashes:
            out["hashes"] = list(self.hashes)
        if self.reason:
            out["reason"] = self.reason
        return out


class _Bucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Hasher:
    """Bounded, cached file digests; thread-safe."""

    def __init__(self, config: HashConfig | None = None, metrics: Registry | None = None) -> None:
        self.config = config or HashConfig()
        self.counts: collections.Counter[str] = collections.Counter({r: 0 for r in RESULTS})
        self._cache: collections.OrderedDict[tuple[int, ...], tuple[str, ...]] = collections.OrderedDict()
        self._bucket = _Bucket(self.config.rate)
        self._lock = threading.Lock()
        if metrics is not None:
            metrics.callback("file_hashes_total", "file hash requests (hash action, *.file.hashes), by result",
                             "counter", ("result",), lambda: [((r,), self.counts[r]) for r in RESULTS])

    def count(self, result: HashResult) -> HashResult:
        with self._lock:
            self.counts[result.status] += 1
        return result

    def hash_file(self, path: str, inode: int = 0, root: str = "") -> HashResult:
        """The digests of the file at ``path`` (read under ``root``, a
        process's ``/proc/PID/root``, when given). ``inode``, when known (the
        event's), must be the file's: a file replaced since is an error."""
        if not path.startswith("/"):
            return self.count(HashResult("error", reason=f"not an absolute path: {path[:80]!r}"))
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(root + path, flags)
        except OSError as exc:
            return self.count(HashResult("error", reason=f"{exc.strerror}"))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return self.count(HashResult("error", reason="not a regular file"))
            if inode and st.st_ino != inode:
                return self.count(HashResult("error", reason="the file was replaced since the event"))
            if st.st_size > self.config.max_bytes:
                return self.count(HashResult("too_big", reason=f"{st.st_size} bytes, more than "
                                                               f"{self.config.max_bytes}"))
            key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
            with self._lock:
                cached = self._cache.get(key)
                if cached is not None:
                    self._cache.move_to_end(key)
                    self.counts["cached"] += 1
                    return HashResult("cached", cached)
                allowed = self._bucket.take()
            if not allowed:
                return self.count(HashResult("rate_limited", reason=f"more than {self.config.rate:g} per second"))
            digests = self._digest(fd)
            if digests is None:
                return self.count(HashResult("too_big", reason=f"grew past {self.config.max_bytes} bytes"))
        except OSError as exc:
            return self.count(HashResult("error", reason=f"{exc.strerror}"))
        finally:
            os.close(fd)
        with self._lock:
            self._cache[key] = digests
            while len(self._cache) > self.config.cache_entries:
                self._cache.popitem(last=False)
            self.counts["computed"] += 1
        return HashResult("computed", digests)

    def _digest(self, fd: int) -> tuple[str, ...] | None:
        hashes = [hashlib.new(a, usedforsecurity=False) for a in self.config.algorithms]
        total = 0
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > self.config.max_bytes:
                return None
            for h in hashes:
                h.update(chunk)
        return tuple(f"{a}:{h.hexdigest()}" for a, h in zip(self.config.algorithms, hashes))


_DEFAULT: list[Hasher] = []


def default_hasher() -> Hasher:
    """The process's hasher (the ``*.file.hashes`` fields read through it)."""
    if not _DEFAULT:
        _DEFAULT.append(Hasher())
    return _DEFAULT[0]


def set_default_hasher(hasher: Hasher) -> None:
    _DEFAULT[:] = [hasher]


@dataclass
class HashJob:
    """An alert waiting for the files its ``hash`` actions name."""

    alert: dict[str, Any]
    files: list[tuple[dict[str, Any], dict[str, Any], int]]  # (file object of the event, action report, pid)
    done: Callable[[dict[str, Any]], None] = field(repr=False, default=lambda alert: None)


def process_root(pid: int) -> str:
    """``/proc/PID/root`` while the process lives (its mount namespace's
    view of paths), else ``""`` (the agent's own)."""
    root = f"/proc/{pid}/root"
    return root if pid > 0 and os.path.isdir(root) else ""


def run_job(hasher: Hasher, job: HashJob) -> None:
    """Hash each file of ``job`` (reports and the event's file objects filled in), then ``done``."""
    for file_obj, report, pid in job.files:
        path, inode = file_obj.get("path"), file_obj.get("inode")
        if isinstance(path, str):
            result = hasher.hash_file(path, inode if isinstance(inode, int) else 0, process_root(pid))
        else:
            result = hasher.count(HashResult("error", reason="the event has no path for this file"))
        report.update(result.as_dict())
        if result.hashes:
            file_obj["hashes"] = list(result.hashes)
    job.done(job.alert)


class HashWorker:
    """Runs :class:`HashJob` s in one thread; ``close`` drains it."""

    def __init__(self, hasher: Hasher, queue_size: int | None = None) -> None:
        self.hasher = hasher
        self._queue: queue.Queue[HashJob | None] = queue.Queue(queue_size or hasher.config.queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: HashJob) -> bool:
        """Queue ``job``; False when the queue is full (the caller sends the alert as is)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rsagent-hash", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                run_job(self.hasher, job)
            except Exception:  # one bad job must not stop the thread: its alert still goes out
                log.exception("hash worker: job failed; its alert is sent without hashes")
                job.done(job.alert)

    def close(self, timeout: float = 5.0) -> list[HashJob]:
        """Finish the queued jobs (at most ``timeout`` s); returns those left undone."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return []
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        thread.join(max(0.0, deadline - time.monotonic()))
        left: list[HashJob] = []
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                left.append(job)
        return left

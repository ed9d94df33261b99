"""One sink's queue and thread.

The agent's event loop only appends to a sink's bounded in-memory queue;
the sink's own thread takes batches from it and hands them to the
destination (its *transport*). A slow or failing destination therefore
never stalls reading the ring buffer, nor another sink: its queue fills and
what does not fit is dropped and counted (``rsagent_sink_dropped_total
{reason="queue_full"}``).

On a delivery error the thread logs once per burst (the first error after a
success, with the sink's name), counts every error, and then:

- a network sink with a spool writes the batch, and everything after it,
  to the spool, and replays the spool in order (exponential backoff between
  attempts) until it is empty: nothing is lost unless the spool is full;
- any other sink retries the same batch with backoff (a full disk comes
  back); its queue meanwhile fills and drops are counted;
- a destination gone for good (a reader that closed stdout) is closed: its
  documents are counted as dropped from then on, the agent goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..metrics import Child, Registry
from .record import Record
from .spool import Spool

log = logging.getLogger("agent.sinks")

DROP_REASONS = ("queue_full", "spool_full", "rejected", "closed", "exit")


class DeliveryError(Exception):
    """A transport could not deliver (all of) a batch.

    ``delivered``: how many records at the head of the batch did arrive;
    ``rejected``: how many after those the destination refused for good
    (dropped and counted, the rest is retried); ``permanent``: the
    destination is gone and will not come back (the sink closes)."""

    def __init__(self, message: str, *, delivered: int = 0, rejected: int = 0, permanent: bool = False) -> None:
        super().__init__(message)
        self.delivered = delivered
        self.rejected = rejected
        self.permanent = permanent


class Transport(Protocol):
    """Where one sink's records go. ``send`` runs on the sink's thread only."""

    batch_records: int
    batch_bytes: int

    def send(self, batch: list[Record]) -> None:
        """Deliver every record, in order, or raise DeliveryError."""

    def close(self) -> None: ...


class SinkMetrics:
    """The per-sink series of the registry, registered once per Sinks."""

    def __init__(self, registry: Registry, workers: Callable[[], list[SinkWorker]]) -> None:
        self.written = registry.counter("sink_written_total", "documents delivered by each sink", ["sink"])
        self.dropped = registry.counter(
            "sink_dropped_total", "documents a sink dropped, by reason (queue_full: the sink fell behind; "
            "spool_full; rejected: refused by the destination; closed: destination gone; exit: not "
            "delivered within the drain time at exit)", ["sink", "reason"])
        self.errors = registry.counter("sink_errors_total", "delivery errors of each sink", ["sink"])
        self.spooled = registry.counter("sink_spooled_total", "documents written to a sink's disk spool", ["sink"])
        registry.callback("sink_queue_depth", "documents waiting in each sink's queue", "gauge", ["sink"],
                          lambda: [(w.name, len(w)) for w in workers()])
        registry.callback("sink_spool_bytes", "bytes waiting in each sink's disk spool", "gauge", ["sink"],
                          lambda: [(w.name, w.spool.bytes) for w in workers() if w.spool is not None])


@dataclass
class SinkCounters:
    written: Child
    errors: Child
    spooled: Child
    dropped: dict[str, Child]


class SinkWorker:
    def __init__(self, name: str, transport: Transport, metrics: SinkMetrics, *, queue_records: int,
                 queue_bytes: int, spool: Spool | None = None, backoff_max: float = 5.0,
                 on_closed: Callable[[SinkWorker], None] | None = None) -> None:
        self.name = name
        self.transport = transport
        self.spool = spool
        self.queue_records = queue_records
        self.queue_bytes = queue_bytes
        self.backoff_max = backoff_max
        self.on_closed = on_closed
        self.count = SinkCounters(
            metrics.written.labels(name), metrics.errors.labels(name), metrics.spooled.labels(name),
            {r: metrics.dropped.labels(name, r) for r in DROP_REASONS})
        self.closed = False               # the destination is gone for good
        self._queue: deque[Record] = deque()
        self._in_bytes = 0                # written by the producer only
        self._out_bytes = 0               # written by the sink thread only
        self._dropping = False            # the producer is in a burst of queue_full drops
        self._idle = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._abort = threading.Event()   # the drain time at exit is over
        self._burst_errors = 0
        self._delay = 0.0
        self._next_try = 0.0
        self._thread = threading.Thread(target=self._run, name=f"sink {name}", daemon=True)

    def __len__(self) -> int:
        return len(self._queue)

    # -- the producer's side (the agent's event loop) ------------------------
    def put(self, rec: Record) -> None:
        if self.closed:
            self.count.dropped["closed"].inc()
            return
        if len(self._queue) >= self.queue_records or self._in_bytes - self._out_bytes + len(rec.data) > self.queue_bytes:
            self.count.dropped["queue_full"].inc()
            if not self._dropping:
                self._dropping = True
                log.warning("sink %s: queue full (%d documents); dropping new documents until it drains "
                            "(counted in rsagent_sink_dropped_total)", self.name, len(self._queue))
            return
        if self._dropping and len(self._queue) < self.queue_records // 2:
            self._dropping = False
        self._queue.append(rec)
        self._in_bytes += len(rec.data)
        if self._idle:
            self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Deliver what is queued, then end (see join/abort)."""
        self._stopping.set()
        self._wake.set()

    def abort(self) -> None:
        """The drain time is over: stop retrying, spool or count the rest."""
        self._abort.set()
        self._wake.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(max(timeout, 0))
        return not self._thread.is_alive()

    # -- the sink's thread ---------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                batch = self._take()
                if batch is None:
                    break
                if batch:
                    self._handle(batch)
                if self.spool is not None and self.spool.pending() and not self._stopping.is_set():
                    self._replay()
        finally:
            self._leftovers()
            try:
                self.transport.close()
            except OSError as exc:
                log.debug("sink %s: close: %s", self.name, exc)
            if self.spool is not None:
                self.spool.close()

    def _take(self) -> list[Record] | None:
        """The next batch; [] when a spool replay is due; None at the end."""
        while True:
            if self._abort.is_set():
                return None
            if self._queue:
                batch: list[Record] = []
                size = 0
                while self._queue and len(batch) < self.transport.batch_records and size < self.transport.batch_bytes:
                    rec = self._queue.popleft()
                    batch.append(rec)
                    size += len(rec.data)
                self._out_bytes += size
                return batch
            if self._stopping.is_set():
                return None
            timeout = 1.0
            if self.spool is not None and self.spool.pending():
                timeout = self._next_try - time.monotonic()
                if timeout <= 0:
                    return []
            self._idle = True
            if not self._queue:
                self._wake.wait(timeout)
            self._wake.clear()
            self._idle = False

    def _handle(self, batch: list[Record]) -> None:
        if self.closed:
            self.count.dropped["closed"].inc(len(batch))
            return
        if self.spool is not None and self.spool.pending():
            self._to_spool(batch)
            return
        while batch:
            try:
                self.transport.send(batch)
            except DeliveryError as exc:
                batch = self._partial(batch, exc)
                if self.closed:
                    self.count.dropped["closed"].inc(len(batch))
                    return
                if not batch:
                    return
                if self.spool is not None:
                    self._to_spool(batch)
                    return
                if not self._backoff():
                    self.count.dropped["exit"].inc(len(batch))
                    return
            else:
                self._delivered(len(batch))
                return

    def _partial(self, batch: list[Record], exc: DeliveryError) -> list[Record]:
        """Account for a failed send; returns what is still to deliver."""
        if exc.delivered:
            self.count.written.inc(exc.delivered)
        if exc.rejected:
            self.count.dropped["rejected"].inc(exc.rejected)
        self._failed(exc)
        return batch[exc.delivered + exc.rejected:]

    def _failed(self, exc: DeliveryError) -> None:
        self.count.errors.inc()
        self._burst_errors += 1
        if exc.permanent and not self.closed:
            self.closed = True
            log.error("sink %s: %s; closing it: its documents are dropped from now on (counted), "
                      "the other sinks go on", self.name, exc)
            if self.on_closed is not None:
                self.on_closed(self)
        elif self._burst_errors == 1:
            then = (f"spooling to {self.spool.directory} and retrying" if self.spool is not None
                    else "retrying with backoff; documents are dropped while its queue is full")
            log.warning("sink %s: %s; %s (further errors are counted until it recovers)", self.name, exc, then)
        self._delay = min(self.backoff_max, self._delay * 2) if self._delay else min(0.2, self.backoff_max)
        self._next_try = time.monotonic() + self._delay

    def _delivered(self, n: int) -> None:
        self.count.written.inc(n)
        if self._burst_errors:
            log.warning("sink %s: delivering again after %d error(s)", self.name, self._burst_errors)
            self._burst_errors = 0
        self._delay = 0.0

    def _backoff(self) -> bool:
        """Wait before retrying; False once the drain time at exit is over."""
        self._abort.wait(max(0.0, self._next_try - time.monotonic()))
        return not self._abort.is_set()

    def _to_spool(self, batch: list[Record]) -> None:
        assert self.spool is not None
        n = self.spool.append(batch)
        self.count.spooled.inc(n)
        if n < len(batch):
            self.count.dropped["spool_full"].inc(len(batch) - n)
            if self._burst_errors <= 1 or n == 0:
                log.warning("sink %s: spool %s full (%d bytes): %d document(s) dropped", self.name,
                            self.spool.directory, self.spool.bytes, len(batch) - n)

    def _replay(self) -> None:
        """Send the spool, oldest first, while the destination takes it."""
        assert self.spool is not None
        if time.monotonic() < self._next_try:
            return
        while self.spool.pending() and not self._abort.is_set():
            batch = self.spool.peek(self.transport.batch_records, self.transport.batch_bytes)
            if not batch:
                return
            try:
                self.transport.send(batch)
            except DeliveryError as exc:
                self._partial(batch, exc)
                self.spool.commit(exc.delivered + exc.rejected)
                if not exc.rejected:
                    return
                continue
            self.spool.commit(len(batch))
            self._delivered(len(batch))
            # Keep arrivals behind the spooled records, in order.
            while self._queue:
                more = self._take()
                if more:
                    self._to_spool(more)

    def _leftovers(self) -> None:
        """At the end: what is still queued goes to the spool, or is counted."""
        rest: list[Record] = []
        while self._queue:
            rest.append(self._queue.popleft())
        if not rest:
            return
        if self.spool is not None and not self.closed:
            self._to_spool(rest)
        else:
            self.count.dropped["closed" if self.closed else "exit"].inc(len(rest))

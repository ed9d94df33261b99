"""The cyclic garbage collector, set for the event loop (issue 12).

The record path allocates a few dozen containers per event (records, event
documents, their file and process parts) that reference counting frees as
soon as the event is done: it makes next to no cyclic garbage (a few hundred
objects per 60 000 events). With CPython's default threshold (a young
collection every 700 allocations net of frees) the collector still ran
every few records while a batch of 1 024 decoded records was waiting, and
walked that batch each time: a young collection now waits for
``YOUNG_THRESHOLD`` allocations, more than a batch's worth. bench_pipeline,
nothing matching: 1.27x events/s, decode 5.3-7.2 -> 3.7-4.5 µs
(bench/README.md). Freezing what is alive at start (``gc.freeze``) as well
measured 0.85x there, so it is not done.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

# allocations (net of frees) between two young collections; CPython's default is 700
YOUNG_THRESHOLD = 100_000


def settle() -> None:
    """Space the young collections (see the module docstring)."""
    young, middle, old = gc.get_threshold()
    if young and young < YOUNG_THRESHOLD:  # 0: collection disabled by the embedder; left so
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    log.debug("garbage collector thresholds: %s", gc.get_threshold())

"""The cyclic garbage collector, set for the event loop (issue 12).

The record path allocates a few dozen containers per event (records, event
documents, their file and process parts) that reference counting frees as
soon as the event is done: it makes next to no cyclic garbage (a few hundred
objects per 60 000 events, bench/README.md "Pipeline capacity"). With
CPython's default thresholds (a young collection every 700 allocations) the
collector still ran every few events and walked the batch being processed,
the process cache, the policy and every imported module again and again:
about 40 % of the consumer's time on an open storm. So, once the agent is up
(policy compiled, process table snapshotted):

- everything alive then is moved out of the collector's sight
  (``gc.freeze``): it lives as long as the agent, and reference counting
  still frees what of it goes away;
- a young collection waits for ``YOUNG_THRESHOLD`` allocations: a batch's
  worth of events is freed by reference counting before one runs.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

# allocations (net of frees) between two young collections; CPython's default is 700
YOUNG_THRESHOLD = 100_000


def settle() -> None:
    """Freeze what is alive now and space the young collections (see the module docstring)."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if young and young < YOUNG_THRESHOLD:  # 0: collection disabled by the embedder; left so
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    log.debug("garbage collector: %d objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold())

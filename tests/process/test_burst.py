"""A burst of 20,000 short-lived processes: the process cache stays under
its cap, counts its evictions, and nothing fails (issue 5)."""

from __future__ import annotations

import gc
import subprocess
import time

import pytest

from agent.process.cache import DEFAULT_MAX_ENTRIES
from agent.process.model import Process
from agent.runtime import PROCESS_TYPES

pytestmark = pytest.mark.root

BURST = 20_000
CAP = 4096


def test_burst_of_short_lived_processes_stays_bounded(built_objects: None) -> None:
    from harness import Tracer

    tracer = Tracer(process_cache_max=CAP).start()
    try:
        cache = tracer.runtime.processes
        start = time.monotonic()
        subprocess.run(["sh", "-c", f"i=0; while [ $i -lt {BURST} ]; do /bin/true; i=$((i+1)); done"],
                       check=True, timeout=300)
        tracer.sync(timeout=60)
        elapsed = time.monotonic() - start
        assert len(cache) <= CAP
        kernel = tracer.runtime.kernel_stats()
        # (the other types - mmap of every exec's libraries... - share the other ring and may overflow it)
        lost = {t: st.lost for t, st in kernel.items() if st.lost and t in PROCESS_TYPES}
        assert not lost, f"lifecycle records lost: {lost}"
        assert cache.stats.forks >= BURST and cache.stats.exits >= BURST, cache.stats
        assert cache.stats.evicted_exited >= BURST - CAP
        assert cache.stats.evicted_live == 0            # only exited images were evicted
        assert kernel["exec"].sent >= BURST
        assert not tracer.runtime.decoder.errors and tracer.runtime.consumer_errors == 0
        # evicted images are garbage: nothing but the caches holds them
        gc.collect()
        alive = sum(1 for o in gc.get_objects() if type(o) is Process)
        # this cache and the session tracer's (default cap 16 384, when another
        # test started it), each entry with at most its image before an exec
        assert alive < 2 * (CAP + DEFAULT_MAX_ENTRIES) + 1000, alive
        print(f"{BURST} processes in {elapsed:.1f} s; cache {len(cache)}; {cache.stats}")
    finally:
        tracer.stop()

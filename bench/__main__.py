"""`make bench`: every benchmark in turn (as root). See bench/README.md."""

from __future__ import annotations

import importlib
import sys

BENCHES = ("bench_ringbuf", "bench_eval", "bench_trace", "bench_process", "bench_filters", "bench_fim",
           "bench_activity", "bench_replay", "bench_workloads")


def main() -> int:
    for name in BENCHES:
        print(f"\n=== bench.{name} ===", flush=True)
        module = importlib.import_module(f"bench.{name}")
        rc = module.main([])
        if rc:
            return int(rc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

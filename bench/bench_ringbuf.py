"""Ring-buffer consumption cost of the libbpf binding (agent.libbpf).

A BPF program on ``tracepoint/syscalls/sys_enter_getppid`` emits ``--records``
64-byte records (``bpf_loop``, no wake-ups) for this process's getppid();
Python then drains them with ``ring_buffer__consume`` and only the drain is
timed. Variants:

* ``C counter``: a pure-C sample callback (the shim's ``rsa_ringbuf_count``):
  libbpf's own loop, no Python per record; the floor.
* ``API ...``: the binding's :class:`agent.libbpf.RingBuffer` (API mode:
  compiled ``extern "Python"`` trampoline -> dispatcher -> callback).
* ``ABI ...``: the same libbpf calls through an ABI-mode FFI
  (``ffi.dlopen("libbpf.so.1")``) and an ``ffi.callback`` wrapping the
  callback directly, i.e. the best an ABI-mode binding could do.

Callbacks: ``empty`` does nothing; ``decode`` casts the record to its struct
(``ffi.cast``) and reads three fields; ``unpack`` reads the same three fields
with one ``struct.unpack_from`` over ``ffi.buffer`` (no copy); ``bytes``
copies the record (``record_bytes``).

Run as root: ``.venv/bin/python -m bench.bench_ringbuf [--records N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cffi import FFI

from agent.libbpf import BpfObject, RingBuffer, load_object, record_bytes
from agent.libbpf._ffi import ffi as api_ffi
from agent.libbpf._ffi import lib as api_lib

REPO = Path(__file__).resolve().parents[1]
RING_BYTES = 16 << 20

BPF_SOURCE = r"""
// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct bench_rec {
	__u32 pid;
	__u32 cpu;
	__u64 seq;
	__u64 ts;
	__u8 _pad[40];
};

const volatile __u32 bench_pid = 0;
const volatile __u32 records = 1;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} bench_events SEC(".maps");

static long emit(__u32 i, void *ctx)
{
	struct bench_rec *r = bpf_ringbuf_reserve(&bench_events, sizeof(*r), 0);

	if (!r)
		return 1; /* full: stop the loop */
	r->pid = bench_pid;
	r->cpu = bpf_get_smp_processor_id();
	r->seq = i;
	r->ts = bpf_ktime_get_ns();
	__builtin_memset(r->_pad, 0, sizeof(r->_pad));
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int bench_emit(void *ctx)
{
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) != bench_pid)
		return 0;
	bpf_loop(records, emit, 0, 0);
	return 0;
}
"""

REC_CDEF = "struct bench_rec { uint32_t pid; uint32_t cpu; uint64_t seq; uint64_t ts; uint8_t _pad[40]; };"

ABI_CDEF = """
typedef int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size);
struct ring_buffer;
struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb, void *ctx, const void *opts);
int ring_buffer__consume(struct ring_buffer *rb);
void ring_buffer__free(struct ring_buffer *rb);
"""


@dataclass(frozen=True)
class Result:
    name: str
    ns_per_record: float
    records: int

    @property
    def records_per_s(self) -> float:
        return 1e9 / self.ns_per_record


def compile_bpf(out: Path) -> Path:
    src = out / "bench_ringbuf.bpf.c"
    obj = out / "bench_ringbuf.bpf.o"
    src.write_text(BPF_SOURCE)
    cmd = ["clang-19", "-g", "-O2", "-Wall", "-target", "bpf", "-D__TARGET_ARCH_x86",
           "-I", str(REPO / "vmlinux" / "x86_64"), "-c", str(src), "-o", str(obj)]  # fmt: skip
    subprocess.run(cmd, check=True)
    return obj


def drain_timed(consume: Callable[[], int], n: int, rounds: int) -> tuple[float, int]:
    """Median ns/record over ``rounds`` fills of ``n`` records each."""
    per_round = []
    total = 0
    consume()  # anything left over
    for _ in range(rounds):
        os.getppid()  # the BPF program emits n records, inside this syscall
        t0 = time.perf_counter_ns()
        got = consume()
        t1 = time.perf_counter_ns()
        if got != n:
            raise RuntimeError(f"expected {n} records, consumed {got} (ring buffer too small?)")
        per_round.append((t1 - t0) / got)
        total += got
    return statistics.median(per_round), total


def api_variants(rec_ffi: FFI) -> dict[str, Callable[[Any, int], Any]]:
    cast = rec_ffi.cast

    def empty(data: Any, size: int) -> None:
        pass

    def decode(data: Any, size: int) -> None:
        r = cast("struct bench_rec *", data)
        r.pid, r.seq, r.ts  # noqa: B018 - the read is the work

    def copy(data: Any, size: int) -> None:
        record_bytes(data, size)

    unpack_from = struct.Struct("=IIQQ").unpack_from
    buffer = rec_ffi.buffer

    def unpack(data: Any, size: int) -> None:
        unpack_from(buffer(data, size))

    return {"empty": empty, "decode": decode, "unpack": unpack, "bytes": copy}


def bench_c_counter(obj: BpfObject, n: int, rounds: int) -> Result:
    counter = api_ffi.new("unsigned long long *")
    fn = api_ffi.addressof(api_lib, "rsa_ringbuf_count")
    rb = api_lib.ring_buffer__new(obj.maps["bench_events"].fd, fn, counter, api_ffi.NULL)
    if rb == api_ffi.NULL:
        raise OSError(api_ffi.errno, "ring_buffer__new")
    try:
        ns, total = drain_timed(lambda: api_lib.ring_buffer__consume(rb), n, rounds)
    finally:
        api_lib.ring_buffer__free(rb)
    return Result("C counter (no Python)", ns, total)


def bench_api(obj: BpfObject, name: str, fn: Callable[[Any, int], Any], n: int, rounds: int) -> Result:
    with RingBuffer(obj.maps["bench_events"], fn) as rb:
        ns, total = drain_timed(rb.consume, n, rounds)
    return Result(f"API {name}", ns, total)


def bench_abi(obj: BpfObject, name: str, fn: Callable[[Any, int], Any], n: int, rounds: int) -> Result:
    abi = FFI()
    abi.cdef(ABI_CDEF)
    libbpf = abi.dlopen("libbpf.so.1")

    def sample(ctx: Any, data: Any, size: int) -> int:
        fn(data, size)
        return 0

    cb = abi.callback("ring_buffer_sample_fn", sample)
    rb = libbpf.ring_buffer__new(obj.maps["bench_events"].fd, cb, abi.NULL, abi.NULL)
    if rb == abi.NULL:
        raise OSError(abi.errno, "ring_buffer__new")
    try:
        ns, total = drain_timed(lambda: libbpf.ring_buffer__consume(rb), n, rounds)
    finally:
        libbpf.ring_buffer__free(rb)
    return Result(f"ABI {name}", ns, total)


def run(n: int, rounds: int) -> list[Result]:
    rec_ffi = FFI()
    rec_ffi.cdef(REC_CDEF)
    with tempfile.TemporaryDirectory(prefix="bench-ringbuf-") as tmp:
        path = compile_bpf(Path(tmp))
        with load_object(
            path,
            variables={"bench_pid": os.getpid(), "records": n},
            max_entries={"bench_events": RING_BYTES},
            attach=True,
        ) as obj:
            results = [bench_c_counter(obj, n, rounds)]
            for name, fn in api_variants(rec_ffi).items():
                results.append(bench_api(obj, name, fn, n, rounds))
                results.append(bench_abi(obj, name, fn, n, rounds))
    return results


def table(results: list[Result]) -> str:
    lines = ["| variant | ns/record | records/s |", "|---|---:|---:|"]
    for r in results:
        lines.append(f"| {r.name} | {r.ns_per_record:.0f} | {r.records_per_s / 1e6:.2f} M |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="records per round (default 100000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per variant; the median is reported")
    args = parser.parse_args(argv)
    if args.records * 72 > RING_BYTES:
        parser.error(f"--records: at most {RING_BYTES // 72} fit the {RING_BYTES >> 20} MiB ring buffer")
    results = run(args.records, args.rounds)
    print(f"# {args.records} records x {args.rounds} rounds per variant, 64-byte records, median ns/record")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

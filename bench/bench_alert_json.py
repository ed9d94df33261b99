"""Alert serialization: the standard library's encoder against orjson, with
and without the JSON of shared parts spliced.

    python -m bench.bench_alert_json [--alerts N] [--rounds R] [--ancestors K]

Pure Python, no root. An alert is built the way the runtime builds one: an
open event whose ``process`` is a copy of the image's cached document with
the event-time fields laid over it, its ``ancestors`` a Lazy giving the
chain kept on the image (K process images, each with an executable's file
document), ``open.file`` a fresh file document. Per alert, median of the
rounds (µs):

- ``materialize``: resolving every Lazy in place (what the engine did for
  every alert; the sinks' encoder now resolves them as it writes);
- ``json``: ``json.dumps`` of the materialized alert (the previous encoder);
- ``orjson``: orjson on the same materialized, plain dicts (no splicing);
- ``spliced``: ``agent.sinks.record.encode`` on the alert as the engine
  hands it over: Lazy values resolved as it goes, every resolved part (the
  image documents, the chain) written once and spliced afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from agent.evaluator.event import Lazy, ResolvedList, materialize, resolved
from agent.sinks.record import encode


def _file(path: str, inode: int) -> dict[str, Any]:
    return {"path": path, "name": path.rsplit("/", 1)[-1], "inode": inode, "mount_id": 27, "mode": 0o100755,
            "uid": 0, "gid": 0, "user": Lazy(lambda: "root"), "group": Lazy(lambda: "root"),
            "filesystem": "ext4", "in_upper_layer": False, "change_time": 1745849508000000000,
            "modification_time": 1745849508000000000, "is_memfd": False, "is_deleted": False}


def _image(pid: int, comm: str, argv: list[str]) -> dict[str, Any]:
    return {"pid": pid, "ppid": pid - 1, "comm": comm, "cookie": 7417347007670386000 + pid,
            "created_at": 1796178491794333638, "file": _file(f"/usr/bin/{comm}", 260000 + pid), "argv": argv,
            "argv0": argv[0], "args": " ".join(argv[1:]), "argc": len(argv), "args_truncated": False,
            "tty_name": "", "is_thread": False, "is_kworker": False, "container": {"id": ""},
            "uid": 0, "gid": 0, "euid": 0, "egid": 0, "fsuid": 0, "fsgid": 0,
            "user": Lazy(lambda: "root"), "group": Lazy(lambda: "root"),
            "cap_effective": 2199006478335, "cap_permitted": 2199006478335, "from_snapshot": True}


def _maker(ancestors: int) -> Callable[[], dict[str, Any]]:
    chain = ResolvedList(resolved(_image(1000 - i, f"parent{i}", [f"parent{i}", "--flag", f"/some/path/{i}"]))
                         for i in range(ancestors))
    base = resolved(_image(2000, "openloop", ["openloop", "/tmp/hot-file", "100000"]))

    def make() -> dict[str, Any]:
        process = base.copy()
        process["ancestors"] = Lazy(lambda: chain)
        process.update(tid=2000, comm="openloop", cgroup={"id": "1234"})
        event = {"type": "open", "timestamp": 1796178501044588621, "process": process,
                 "open": {"file": _file("/tmp/rsagent-bench/hot-file", 4242), "flags": 0, "mode": 0, "retval": 3}}
        return {"rule_id": "every_open", "rule_tags": {}, "timestamp": 1796178501044588621, "event": event}
    return make


def _per_alert(fn: Callable[[Any], Any], docs: list[Any]) -> float:
    t0 = time.perf_counter()
    for d in docs:
        fn(d)
    return (time.perf_counter() - t0) / len(docs) * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ancestors", type=int, default=7)
    args = ap.parse_args(argv)
    make = _maker(args.ancestors)
    sample = materialize(make())
    assert json.loads(encode(make())) == json.loads(json.dumps(sample)), "spliced JSON differs"
    print(f"alert document: {len(encode(make()))} bytes of JSON, {args.ancestors} ancestors")
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        fresh = [make() for _ in range(args.alerts)]
        results.setdefault("materialize", []).append(_per_alert(materialize, fresh))
        results.setdefault("json", []).append(_per_alert(
            lambda d: json.dumps(d, ensure_ascii=True, separators=(",", ":")), fresh))
        results.setdefault("orjson", []).append(_per_alert(orjson.dumps, fresh))
        results.setdefault("spliced", []).append(_per_alert(encode, [make() for _ in range(args.alerts)]))
    for name, values in results.items():
        print(f"{name:12} {statistics.median(values):7.2f} µs/alert  "
              f"(rounds: {', '.join(f'{v:.2f}' for v in values)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Run a list of file operations, in order, and report each result.

    python3 workload.py OPS.json RESULTS.json
OPS: [["open", path, flags], ["rename", src, dst], ["unlink", path]]
RESULTS: one int per op: the fd closed right away (>= 0) or -errno.
"""
import json
import os
import sys


def main() -> None:
    ops = json.load(open(sys.argv[1]))
    results = []
    for op in ops:
        try:
            if op[0] == "open":
                fd = os.open(op[1], op[2], 0o644)
                os.close(fd)
                results.append(fd)
            elif op[0] == "rename":
                os.rename(op[1], op[2])
                results.append(0)
            elif op[0] == "unlink":
                os.unlink(op[1])
                results.append(0)
        except OSError as exc:
            results.append(-(exc.errno or 0))
    json.dump(results, open(sys.argv[2], "w"))


main()

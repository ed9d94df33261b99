"""Run a list of file operations, in order, and report each result.

    python3 workload.py OPS.json RESULTS.json
OPS: [["open", path, flags], ["chmod", path, mode], ["chown", path, uid, gid],
      ["utimes", path], ["setxattr"/"removexattr", path, name], ["unlink", path],
      ["mkdir"/"rmdir", path], ["rename"/"link", src, dst]]
RESULTS: one int per op: the fd closed right away (>= 0) or -errno.
"""
import json
from collections.abc import Callable
import os
import sys


CALLS: dict[str, Callable[..., object]] = {
    "chmod": os.chmod,
    "chown": os.chown,
    "utimes": lambda path: os.utime(path, (1, 2)),
    "setxattr": lambda path, name: os.setxattr(path, name, b"v"),
    "removexattr": os.removexattr,
    "unlink": os.unlink,
    "mkdir": os.mkdir,
    "rmdir": os.rmdir,
    "rename": os.rename,
    "link": os.link,
}


def main() -> None:
    ops = json.load(open(sys.argv[1]))
    results = []
    for op in ops:
        try:
            if op[0] == "open":
                fd = os.open(op[1], op[2], 0o644)
                os.close(fd)
                results.append(fd)
            else:
                CALLS[op[0]](*op[1:])
                results.append(0)
        except OSError as exc:
            results.append(-(exc.errno or 0))
    json.dump(results, open(sys.argv[2], "w"))


main()

"""Run a list of file and socket operations, in order, and report each result.

    python3 workload.py OPS.json RESULTS.json
OPS: [["open", path, flags], ["chmod", path, mode], ["chown", path, uid, gid],
      ["utimes", path], ["setxattr"/"removexattr", path, name], ["unlink", path],
      ["mkdir"/"rmdir", path], ["rename"/"link", src, dst],
      ["connect"/"bind", ip, port] (UDP: nothing is sent), ["accept", ip, port]
      (a TCP listener there, connected to from this process)]
     and the process-activity calls of activity_calls.py, the kernel-type
     calls (bpf, mmap, mprotect) of kernel_calls.py
RESULTS: {"pid": this process, "results": one per op: the fd closed right
away (>= 0) or the call's return value, -errno on failure (null: no call)}.
"""
import json
import socket
from collections.abc import Callable
import os
import sys

import activity_calls
import kernel_calls


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _udp(call: str, ip: str, port: int) -> None:
    with socket.socket(_family(ip), socket.SOCK_DGRAM) as s:
        getattr(s, call)((ip, port))


def _accept(ip: str, port: int) -> int:
    with socket.socket(_family(ip), socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((ip, port))
        srv.listen(1)
        with socket.create_connection((ip, port), timeout=5):
            conn, _ = srv.accept()
            fd = conn.fileno()
            conn.close()
            return fd


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
    "connect": lambda ip, port: _udp("connect", ip, port),
    "bind": lambda ip, port: _udp("bind", ip, port),
}


def main() -> None:
    ops = json.load(open(sys.argv[1]))
    results: list[int | None] = []
    for op in ops:
        try:
            if op[0] == "open":
                fd = os.open(op[1], op[2], 0o644)
                os.close(fd)
                results.append(fd)
            elif op[0] == "accept":
                results.append(_accept(op[1], op[2]))
            elif op[0] in activity_calls.CALLS:
                results.append(activity_calls.CALLS[op[0]](*op[1:]))
            elif op[0] in kernel_calls.CALLS:
                results.append(kernel_calls.CALLS[op[0]](*op[1:]))
            else:
                CALLS[op[0]](*op[1:])
                results.append(0)
        except OSError as exc:
            results.append(-(exc.errno or 0))
    json.dump({"pid": os.getpid(), "results": results}, open(sys.argv[2], "w"))


main()

"""What the network tests run inside a namespace (``ip netns exec NS python
client.py ACTION ...``), as its own process: the events it causes must name
it. Prints ``pid=<pid>`` first, then what the action learned, one
``key=value`` per line.

    query SERVER NAME [QTYPE] [QID]   a DNS query (unconnected sendto), waits for the answer
    connect IP PORT [tcp|udp]         connect(); tcp: then close
    mapped IP PORT                    connect an AF_INET6 socket to ::ffff:IP
    raw SERVER [HEX...]               send each hex payload (or each line of stdin) to SERVER:53
                                      over UDP, no answer awaited
    sendfile SERVER NAME [wait]       connect a UDP socket to SERVER:53, then send a query with
                                      sendfile(2) (no send call: the classifier finds the socket's
                                      owner); wait: connect, print ready=1, read a line first
    serve IP PORT                     bind (PORT 0: any), listen, print the port, accept one, close
    bindfail IP                       bind to an address that is not local (fails)
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import tempfile


def out(**kv: object) -> None:
    for k, v in kv.items():
        print(f"{k}={v}", flush=True)


def family(ip: str) -> int:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def message(name: str, qtype: int = 1, qid: int = 0x4242) -> bytes:
    wire = b"".join(bytes([len(label)]) + label for label in name.encode().split(b".") if label) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", qtype, 1)


def query(server: str, name: str, qtype: int = 1, qid: int = 0x4242) -> int:
    msg = message(name, qtype, qid)
    with socket.socket(family(server), socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(msg, (server, 53))
        out(sport=s.getsockname()[1])
        try:
            reply = s.recv(4096)
        except TimeoutError:
            out(answered=0)
            return 1
        out(answered=1, rcode=reply[3] & 0xF)
    return 0


def main(argv: list[str]) -> int:
    out(pid=os.getpid())
    action, args = argv[0], argv[1:]
    if action == "query":
        return query(args[0], args[1], int(args[2]) if len(args) > 2 else 1,
                     int(args[3], 0) if len(args) > 3 else 0x4242)
    if action == "connect":
        ip, port = args[0], int(args[1])
        kind = socket.SOCK_DGRAM if len(args) > 2 and args[2] == "udp" else socket.SOCK_STREAM
        with socket.socket(family(ip), kind) as s:
            rc = s.connect_ex((ip, port))
            local = s.getsockname()
            out(rc=rc, lport=local[1])
        return 0
    if action == "mapped":
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            rc = s.connect_ex((f"::ffff:{args[0]}", int(args[1])))
            out(rc=rc, lport=s.getsockname()[1])
        return 0
    if action == "raw":
        payloads = args[1:] or [line.strip() for line in sys.stdin if line.strip()]
        with socket.socket(family(args[0]), socket.SOCK_DGRAM) as s:
            for payload in payloads:
                s.sendto(bytes.fromhex(payload), (args[0], 53))
            out(sent=len(payloads), sport=s.getsockname()[1])
        return 0
    if action == "sendfile":
        with socket.socket(family(args[0]), socket.SOCK_DGRAM) as s, tempfile.TemporaryFile() as f:
            f.write(message(args[1], 1, 0x5151))
            f.flush()
            s.connect((args[0], 53))
            if len(args) > 2:
                out(ready=1)
                sys.stdin.readline()
            sent = os.sendfile(s.fileno(), f.fileno(), 0, f.tell())
            s.settimeout(3)
            out(sent=sent, sport=s.getsockname()[1], answered=int(bool(s.recv(4096))))
        return 0
    if action == "serve":
        with socket.socket(family(args[0]), socket.SOCK_STREAM) as ls:
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((args[0], int(args[1])))
            ls.listen(8)
            out(port=ls.getsockname()[1])
            ls.settimeout(30)
            conn, peer = ls.accept()
            out(peer=peer[0], peer_port=peer[1])
            conn.close()
        return 0
    if action == "bindfail":
        with socket.socket(family(args[0]), socket.SOCK_STREAM) as s:
            try:
                s.bind((args[0], 0))
                out(rc=0)
            except OSError as exc:
                out(rc=-(exc.errno or 0))
        return 0
    print(f"client.py: unknown action {action!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

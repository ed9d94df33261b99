"""``syslog:`` — RFC 5424 messages to a syslog daemon or relay.

    syslog:                       the local daemon, unix datagram socket /dev/log
    syslog:/run/custom.sock       another unix datagram socket
    syslog:udp://HOST:PORT        UDP (RFC 5426), one message per datagram
    syslog:tcp://HOST:PORT        TCP with octet-counted framing (RFC 6587)
    options: facility=NAME (default auth), hostname=NAME, app=NAME (default rsagent)

Each message is ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [origin ...] JSON``:
PRI from the facility and the alert's severity (its rule's ``severity`` or
``priority`` tag, see record.py), TIMESTAMP the event's (RFC 3339, UTC, µs),
MSGID the rule id (or event type), and the whole alert as one JSON object
in MSG. Receivers must accept long messages (rsyslog: ``global(maxMessageSize
="64k")``); a document larger than a UDP datagram can carry is dropped and
counted (use tcp).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from .record import Record
from .worker import DeliveryError

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
    **{f"local{i}": 16 + i for i in range(8)},
}
UDP_MAX = 65507


def _version() -> str:
    try:
        return version("rsagent")
    except PackageNotFoundError:
        return "unknown"


def _printable(text: str, limit: int) -> str:
    """RFC 5424 header fields: printable US-ASCII, no space, bounded."""
    out = "".join(c if 33 <= ord(c) <= 126 else "_" for c in text)[:limit]
    return out or "-"


def rfc3339(ns: int) -> str:
    if ns <= 0:
        ns = time.time_ns()
    return datetime.fromtimestamp(ns // 1000 / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SyslogTransport:
    batch_records = 256
    batch_bytes = 1 << 20

    def __init__(self, transport: str, address: str | tuple[str, int], *, facility: int, hostname: str,
                 app: str) -> None:
        self.transport = transport  # "unix", "udp", "tcp"
        self.address = address
        self.facility = facility
        self._header_tail = (f" {_printable(hostname, 255)} {_printable(app, 48)} {os.getpid()} ")
        self._origin = f'[origin software="rsagent" swVersion="{_version()}"] '.encode()
        self._sock: socket.socket | None = None

    def format(self, rec: Record) -> bytes:
        pri = self.facility * 8 + rec.severity
        head = f"<{pri}>1 {rfc3339(rec.timestamp)}{self._header_tail}{_printable(rec.name, 32)} "
        return head.encode("ascii") + self._origin + rec.data

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        if self.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        else:
            assert isinstance(self.address, tuple)
            infos = socket.getaddrinfo(self.address[0], self.address[1],
                                       type=socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM)
            sock = socket.socket(infos[0][0], infos[0][1])
            self.address = (str(infos[0][4][0]), int(infos[0][4][1]))
        sock.settimeout(10.0)
        try:
            sock.connect(self.address)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        return sock

    def send(self, batch: list[Record]) -> None:
        if self.transport == "tcp":
            self._send_stream(batch)
            return
        for i, rec in enumerate(batch):
            msg = self.format(rec)
            if self.transport == "udp" and len(msg) > UDP_MAX:
                raise DeliveryError(f"a {len(msg)}-byte message does not fit in a UDP datagram (use tcp)",
                                    delivered=i, rejected=1)
            try:
                self._connect().send(msg)
            except OSError as exc:
                self.close()
                if exc.errno == errno.EMSGSIZE:
                    raise DeliveryError(f"a {len(msg)}-byte message is too long for {self.address}",
                                        delivered=i, rejected=1) from None
                raise DeliveryError(f"send to {self.address}: {exc.strerror or exc}", delivered=i) from None

    def _send_stream(self, batch: list[Record]) -> None:
        frames = []
        for rec in batch:
            msg = self.format(rec)
            frames.append(b"%d " % len(msg) + msg)
        if self._sock is not None and _peer_closed(self._sock):
            self.close()  # the relay closed its end: reconnect rather than write into the void
        try:
            self._connect().sendall(b"".join(frames))
        except OSError as exc:
            self.close()
            raise DeliveryError(f"send to {self.address[0]}:{self.address[1]}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the relay closed its end (readable with nothing to read).
    select() first: a socket with a timeout waits up to it in recv()
    whatever MSG_DONTWAIT says."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True

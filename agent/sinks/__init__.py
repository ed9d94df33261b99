"""Where event documents and alerts go (every ``--output``).

    -, stdout                        one JSON document per line on standard output
    jsonl:PATH                       appended to PATH (created 0600, never through a symlink)
    syslog:[PATH|udp://H:P|tcp://H:P] RFC 5424 to a syslog daemon (agent/sinks/syslog.py)
    http(s)://HOST[:PORT]/PATH       a webhook taking batches (agent/sinks/http.py)
    nats://HOST[:PORT]/SUBJECT       NATS JetStream, acknowledged (agent/sinks/nats.py)

Options follow the target after commas (``TARGET,key=value,...``). Every
sink takes ``queue=N`` (documents waiting in memory, default 10000) and
``queue_bytes=SIZE`` (default 64M); network sinks (syslog over a socket,
http, nats) also take ``spool=DIR|off`` (default: a directory of their own
under --spool-dir), ``spool_max=SIZE`` (default 256M) and ``backoff_max=``
(longest wait between retries, default 5s).

Each document is serialized once (``Sinks.write``) and the bytes are handed
to every sink's queue; each sink runs on its own thread (agent/sinks/
worker.py), so a slow or failing sink never stalls the caller or another
sink. ``close()`` lets every sink deliver what it holds for at most
``drain_timeout`` seconds and reports what could not be.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..metrics import Registry
from ..safefile import open_append
from .files import LineTransport
from .record import Record, dumps, record_of
from .spec import SinkError, SinkSpec, redact
from .spool import Spool
from .worker import DROP_REASONS, SinkMetrics, SinkWorker, Transport

__all__ = ["DEFAULT_SPOOL_DIR", "SYNTAX", "Record", "Sink", "SinkError", "Sinks", "dumps"]

log = logging.getLogger("agent.sinks")

DEFAULT_SPOOL_DIR = Path(os.environ.get("RSAGENT_SPOOL_DIR", "/var/lib/rsagent/spool"))
SYNTAX = ("'-'/'stdout', 'jsonl:PATH', 'syslog:[SOCKET|udp://HOST:PORT|tcp://HOST:PORT]', "
          "'http(s)://HOST[:PORT]/PATH' or 'nats://HOST[:PORT]/SUBJECT', each with ',option=value'... "
          "(see README, Shipping alerts)")


class Sink(Protocol):
    """What the rule engine writes alerts to."""

    name: str

    def write(self, doc: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def _spool_for(spec: SinkSpec, name: str, spool_dir: Path) -> Spool | None:
    where: str | None = spec.get("spool")
    max_bytes = spec.size("spool_max", 256 << 20)
    if where == "off":
        return None
    if where is None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:80]
        where = str(spool_dir / f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}")
    return Spool(Path(where), max_bytes)


def _headers(spec: SinkSpec) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in spec.all("header"):
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            raise spec.error("header=NAME:VALUE expected")
        headers[key.strip()] = value.strip()
    for item in spec.all("header_env"):
        key, sep, var = item.partition(":")
        if not sep or not key.strip() or not var.strip():
            raise spec.error("header_env=NAME:ENVVAR expected")
        secret = os.environ.get(var.strip())
        if secret is None:
            raise spec.error(f"header_env: environment variable {var.strip()} is not set")
        headers[key.strip()] = secret
    return headers


def _transport(spec: SinkSpec) -> tuple[str, Transport, bool]:
    """(the sink's name, its transport, whether it is a network sink)."""
    target = spec.target
    if target in ("-", "stdout"):
        return "stdout", LineTransport(sys.stdout.fileno()), False
    if target.startswith("jsonl:"):
        path = Path(target[len("jsonl:"):])
        if not path.name:
            raise spec.error("jsonl: needs a file path, e.g. jsonl:/var/log/rsagent/alerts.jsonl")
        try:
            fd = open_append(path)
        except OSError as exc:
            raise spec.error(f"cannot open {path}: {exc.strerror or exc}") from exc
        return target, LineTransport(fd, path=path, owns_fd=True), False
    if target == "syslog" or target.startswith("syslog:"):
        from .syslog import FACILITIES, SyslogTransport

        rest = target[len("syslog:"):] if target != "syslog" else ""
        facility = spec.choice("facility", ("auth", *(f for f in FACILITIES if f != "auth")))
        hostname = spec.get("hostname") or socket.getfqdn()
        app = spec.get("app") or "rsagent"
        kind: str
        address: str | tuple[str, int]
        if not rest or rest.startswith("/"):
            kind, address = "unix", rest or "/dev/log"
        elif m := re.fullmatch(r"(udp|tcp)://\[?([^\]/]+?)\]?:(\d+)", rest):
            kind, address = m.group(1), (m.group(2), int(m.group(3)))
        else:
            raise spec.error("expected syslog:, syslog:/path/to/socket, syslog:udp://HOST:PORT or syslog:tcp://HOST:PORT")
        name = f"syslog:{rest or '/dev/log'}"
        return name, SyslogTransport(kind, address, facility=FACILITIES[facility], hostname=hostname, app=app), kind != "udp"
    if target.startswith(("http://", "https://")):
        from .http import FORMATS, HttpTransport, tls_context

        ca, cert, key = spec.get("ca"), spec.get("cert"), spec.get("key")
        try:
            context = tls_context(ca, cert, key) if target.startswith("https://") else None
        except (OSError, ValueError) as exc:
            raise spec.error(f"TLS set-up: {exc}") from exc
        try:
            transport = HttpTransport(target, fmt=spec.choice("format", FORMATS), timeout=spec.duration("timeout", 10.0),
                                      headers=_headers(spec), context=context, batch_records=spec.integer("batch", 500),
                                      batch_bytes=spec.size("batch_bytes", 4 << 20), hostname=socket.getfqdn())
        except ValueError as exc:
            raise spec.error(str(exc)) from exc
        return redact(target), transport, True
    if target.startswith(("nats://", "tls://")):
        from urllib.parse import unquote, urlsplit

        from .http import tls_context
        from .nats import NatsTransport

        parts = urlsplit(target)
        subject = parts.path.lstrip("/")
        if not parts.hostname or not subject or not re.fullmatch(r"[A-Za-z0-9_.\-]+", subject):
            raise spec.error("expected nats://HOST[:PORT]/SUBJECT (a subject such as rsagent.alerts)")
        server = f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}"
        options: dict[str, Any] = {}
        if parts.username:
            options["user"], options["password"] = unquote(parts.username), unquote(parts.password or "")
        creds = spec.get("creds")
        if creds:
            options["user_credentials"] = creds
        token_env = spec.get("token_env")
        if token_env:
            if token_env not in os.environ:
                raise spec.error(f"token_env: environment variable {token_env} is not set")
            options["token"] = os.environ[token_env]
        ca = spec.get("ca")
        try:
            tls = tls_context(ca, None, None) if parts.scheme == "tls" or ca else None
        except OSError as exc:
            raise spec.error(f"TLS set-up: {exc}") from exc
        transport_n = NatsTransport([server], subject, stream=spec.get("stream"), timeout=spec.duration("timeout", 5.0),
                                    connect_options=options, tls=tls)
        return redact(f"{server}/{subject}"), transport_n, True
    raise spec.error(f"unknown sink (use {SYNTAX})")


class Sinks:
    """Every --output at once; see the module docstring."""

    name = "sinks"

    def __init__(self, specs: list[str] | None, metrics: Registry | None = None, *,
                 spool_dir: Path = DEFAULT_SPOOL_DIR, drain_timeout: float = 5.0,
                 on_all_closed: Callable[[], None] | None = None) -> None:
        self.metrics = metrics if metrics is not None else Registry()
        self.drain_timeout = drain_timeout
        self.workers: list[SinkWorker] = []
        self._on_all_closed = on_all_closed
        self._closed = False
        counters = SinkMetrics(self.metrics, lambda: list(self.workers))
        try:
            for text in specs or ["-"]:
                self.workers.append(self._open(SinkSpec.parse(text), counters, spool_dir))
        except (SinkError, OSError) as exc:
            self._release()
            if isinstance(exc, SinkError):
                raise
            raise SinkError(f"--output: {exc}") from exc
        for w in self.workers:
            w.start()

    def _open(self, spec: SinkSpec, counters: SinkMetrics, spool_dir: Path) -> SinkWorker:
        name, transport, network = _transport(spec)
        if any(w.name == name for w in self.workers):
            transport.close()
            raise spec.error("given twice")
        try:
            spool = _spool_for(spec, name, spool_dir) if network else None
            worker = SinkWorker(name, transport, counters, queue_records=spec.integer("queue", 10000),
                                queue_bytes=spec.size("queue_bytes", 64 << 20), spool=spool,
                                backoff_max=spec.duration("backoff_max", 5.0), on_closed=self._sink_closed)
            spec.check_used()
        except BaseException:
            transport.close()
            raise
        return worker

    def _release(self) -> None:
        for w in self.workers:
            w.transport.close()
            if w.spool is not None:
                w.spool.close()
        self.workers = []

    def _sink_closed(self, _worker: SinkWorker) -> None:
        if self._on_all_closed is not None and all(w.closed for w in self.workers):
            self._on_all_closed()

    def write(self, doc: dict[str, Any]) -> None:
        """Serialize ``doc`` once and queue it to every sink. Its Lazy
        values are resolved as it is serialized: it need not be materialized."""
        rec = record_of(doc)
        for w in self.workers:
            w.put(rec)

    def flush(self) -> None:
        """Nothing to do: each sink's thread delivers as documents arrive
        (kept for the event loop, which calls it after every batch)."""

    def close(self) -> None:
        """Let every sink deliver what it holds (at most drain_timeout
        seconds in all), then report per sink what was and was not."""
        if self._closed:
            return
        self._closed = True
        for w in self.workers:
            w.stop()
        deadline = time.monotonic() + self.drain_timeout
        for w in self.workers:
            w.join(deadline - time.monotonic())
        for w in self.workers:
            if not w.join(0):
                w.abort()
        for w in self.workers:
            stuck = not w.join(1.0)
            self._report(w, stuck)
        log.info("sinks: closed in %.2f s", time.monotonic() - deadline + self.drain_timeout)

    def _report(self, w: SinkWorker, stuck: bool) -> None:
        c = w.count
        dropped = {r: int(c.dropped[r].value) for r in DROP_REASONS if c.dropped[r].value}
        parts = [f"{int(c.written.value)} written"]
        if dropped:
            parts.append(f"{sum(dropped.values())} dropped ({', '.join(f'{k}={v}' for k, v in dropped.items())})")
        parts.append(f"{int(c.errors.value)} error(s)")
        if w.spool is not None and w.spool.records:
            parts.append(f"{w.spool.records} kept in the spool {w.spool.directory} for the next start")
        if stuck:
            parts.append(f"{len(w)} not delivered: the sink did not finish within {self.drain_timeout:g} s")
        level = logging.WARNING if dropped or stuck else logging.INFO
        log.log(level, "sink %s: %s", w.name, ", ".join(parts))

    def __enter__(self) -> Sinks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

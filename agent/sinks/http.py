"""``http://`` and ``https://`` — a webhook receiving batches of alerts.

    https://HOST[:PORT]/PATH[,format=ndjson|array|falco][,timeout=10s][,ca=FILE]
        [,cert=FILE,key=FILE][,header=NAME:VALUE]...[,header_env=NAME:ENVVAR]...[,batch=N]

``format=ndjson`` (default): one POST per batch, one JSON document per line
(``application/x-ndjson``: Vector's and Fluent Bit's HTTP inputs, Loki
promtail, most log collectors). ``array``: the batch as one JSON array.
``falco``: one POST per alert shaped as a Falco event (``rule``,
``priority``, ``output``, ``time``, ``output_fields``...), what
falcosidekick's input takes.

TLS: the server's certificate is always verified, against the system's
trust store or ``ca=FILE``; ``cert=``/``key=`` present a client certificate.
``header_env=Authorization:RSAGENT_WEBHOOK_AUTH`` takes a header's value
from the environment (secrets stay off the command line); header values are
never logged. Userinfo in the URL is sent as basic authentication.

Delivery: 2xx is success. A refused connection, a timeout, 5xx, 408, 429,
401 and 403 are retried (with the spool, in order); other 4xx mean the
destination rejects these documents: they are dropped and counted.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

from .record import Record
from .syslog import _version
from .worker import DeliveryError

FORMATS = ("ndjson", "array", "falco")
_RETRY_STATUS = frozenset({401, 403, 408, 429})
FALCO_PRIORITIES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")


def falco_time(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}Z"


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out[prefix] = value


def falco_event(rec: Record, hostname: str) -> bytes:
    """An alert as falcosidekick's input expects a Falco event."""
    doc = json.loads(rec.data)
    event = doc.get("event", {})
    fields: dict[str, Any] = {}
    _flatten("", {k: v for k, v in event.items() if k not in ("timestamp",)}, fields)
    proc = event.get("process", {})
    summary = doc.get("rule_description") or doc.get("rule_id", "")
    what = [f"{k}={fields[k]}" for k in ("process.comm", "process.pid", "process.file.path") if k in fields]
    for key in (f"{event.get('type')}.file.path", "exec.file.path"):
        if key in fields:
            what.append(f"{key}={fields[key]}")
            break
    tags = doc.get("rule_tags", {})
    out = {
        "output": f"{summary} ({' '.join(what)})" if what else summary,
        "priority": FALCO_PRIORITIES[rec.severity],
        "rule": doc.get("rule_id", rec.name),
        "time": falco_time(rec.timestamp or doc.get("timestamp", 0)),
        "source": "rsagent",
        "hostname": hostname,
        "tags": [f"{k}:{v}" for k, v in sorted(tags.items())],
        "output_fields": {**fields, "evt.type": event.get("type", ""), "proc.pid": proc.get("pid")},
    }
    return json.dumps(out, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class HttpTransport:
    def __init__(self, url: str, *, fmt: str, timeout: float, headers: dict[str, str],
                 context: ssl.SSLContext | None, batch_records: int, batch_bytes: int, hostname: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url}: expected http(s)://HOST[:PORT]/PATH")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.https = parts.scheme == "https"
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.fmt = fmt
        self.timeout = timeout
        self.context = context
        self.batch_records = 1 if fmt == "falco" else batch_records
        self.batch_bytes = batch_bytes
        self.hostname = hostname
        self.headers = {"User-Agent": f"rsagent/{_version()}", **headers}
        if parts.username:
            cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.headers.setdefault("Authorization", "Basic " + base64.b64encode(cred).decode())
        self._conn: http.client.HTTPConnection | None = None

    def _body(self, batch: list[Record]) -> tuple[bytes, str]:
        if self.fmt == "ndjson":
            return b"".join(r.data + b"\n" for r in batch), "application/x-ndjson"
        if self.fmt == "array":
            return b"[" + b",".join(r.data for r in batch) + b"]", "application/json"
        return falco_event(batch[0], self.hostname), "application/json"

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.https:
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                         context=self.context)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def send(self, batch: list[Record]) -> None:
        body, ctype = self._body(batch)
        headers = {**self.headers, "Content-Type": ctype}
        for attempt in (1, 2):
            reused = self._conn is not None
            try:
                conn = self._connection()
                conn.request("POST", self.path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.will_close:
                    self.close()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if reused and attempt == 1:
                    continue  # an idle keep-alive connection the server closed: once more on a new one
                raise DeliveryError(f"POST {self._where()}: {exc}") from None
            except ssl.SSLCertVerificationError as exc:
                self.close()
                raise DeliveryError(f"POST {self._where()}: TLS certificate not trusted ({exc.verify_message}); "
                                    f"give the CA with ca=FILE") from None
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                self.close()
                raise DeliveryError(f"POST {self._where()}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}") from None
            status = resp.status
            if 200 <= status < 300:
                return
            reason = f"POST {self._where()}: HTTP {status} {resp.reason}"
            if status >= 500 or status in _RETRY_STATUS:
                raise DeliveryError(reason)
            raise DeliveryError(f"{reason}: the destination rejects these documents", rejected=len(batch))

    def _where(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.host}:{self.port}{self.path.split('?', 1)[0]}"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def tls_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    if cert:
        context.load_cert_chain(cert, key)
    return context

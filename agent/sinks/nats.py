"""``nats://`` and ``tls://`` — publishing to NATS JetStream, acknowledged.

    nats://[USER:PASSWORD@]HOST[:PORT]/SUBJECT[,stream=NAME][,timeout=5s]
        [,creds=FILE][,token_env=ENVVAR][,ca=FILE]

Each document is one message on SUBJECT, published to JetStream and
counted delivered only once the server acknowledged it stored it (a PubAck);
``stream=`` makes the server check the subject lands in that stream. Each
message carries a ``Nats-Msg-Id`` (a digest of the document), so a batch
retried after a lost acknowledgement is stored once (JetStream's duplicate
window). The stream must exist (``nats stream add``, or the operator's
provisioning): without one, publishes are not acknowledged and are retried
(spooled).

The client is nats-py, run on the sink's own thread in its own asyncio loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client

from .record import Record
from .worker import DeliveryError

log = logging.getLogger("agent.sinks")


async def _quiet(exc: Exception) -> None:
    # Connection errors surface as DeliveryError (logged once per burst).
    log.debug("nats: %s", exc)


class NatsTransport:
    batch_records = 256
    batch_bytes = 1 << 20

    def __init__(self, servers: list[str], subject: str, *, stream: str | None, timeout: float,
                 connect_options: dict[str, Any], tls: ssl.SSLContext | None) -> None:
        self.servers = servers
        self.subject = subject
        self.stream = stream
        self.timeout = timeout
        self.options = connect_options
        self.tls = tls
        self._loop = asyncio.new_event_loop()
        self._nc: Client | None = None

    async def _connected(self) -> Client:
        if self._nc is None or not self._nc.is_connected:
            await self._disconnect()
            options: dict[str, Any] = dict(self.options)
            if self.tls is not None:
                options["tls"] = self.tls
            self._nc = await nats.connect(
                self.servers, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=self.timeout,
                error_cb=_quiet, name="rsagent", **options)
        return self._nc

    async def _disconnect(self) -> None:
        if self._nc is not None:
            nc, self._nc = self._nc, None
            try:
                await asyncio.wait_for(nc.close(), self.timeout)
            except (TimeoutError, OSError, nats.errors.Error) as exc:
                log.debug("nats: close: %s", exc)

    async def _send(self, batch: list[Record]) -> None:
        delivered = 0
        futures: list[asyncio.Future[Any]] = []
        try:
            nc = await self._connected()
            js = nc.jetstream(timeout=self.timeout)
            for rec in batch:
                msg_id = hashlib.sha256(rec.data).hexdigest()[:32]
                futures.append(await js.publish_async(self.subject, rec.data, wait_stall=self.timeout,
                                                      stream=self.stream, headers={"Nats-Msg-Id": msg_id}))
            for fut in futures:
                await asyncio.wait_for(asyncio.shield(fut), self.timeout)
                delivered += 1
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            for fut in futures:
                fut.cancel()
            await self._disconnect()
            what = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, nats.js.errors.NoStreamResponseError | nats.errors.NoRespondersError):
                what += f" (no JetStream stream takes subject {self.subject}?)"
            raise DeliveryError(f"publish to {', '.join(self.servers)}: {what}", delivered=delivered) from None

    def send(self, batch: list[Record]) -> None:
        self._loop.run_until_complete(self._send(batch))

    def close(self) -> None:
        self._loop.run_until_complete(self._disconnect())
        self._loop.close()

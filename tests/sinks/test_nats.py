"""nats:// sink: a real nats-server (Debian's) with JetStream, started by
the test, stores every alert, including those produced while the server
was stopped (spooled, then replayed in order when it is back)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import nats
import pytest
from sinkutil import RULE, free_port, read_jsonl, start_agent, start_server, stop_server, trigger, wait_until

pytestmark = pytest.mark.root

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
STREAM, SUBJECT = "RSAGENT", "rsagent.alerts"


def serve(d: Path, port: int) -> subprocess.Popen[bytes]:
    proc = start_server([NATS_SERVER, "-js", "-sd", str(d / "jetstream"), "-a", "127.0.0.1", "-p", str(port)],
                        d / "nats.out")

    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_until(up, 20, "nats-server did not listen")
    return proc


async def _with_js(port: int, fn: Any) -> Any:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    try:
        return await fn(nc.jetstream())
    finally:
        await nc.close()


def create_stream(port: int) -> None:
    async def add(js: Any) -> None:
        await js.add_stream(name=STREAM, subjects=[SUBJECT])
    asyncio.run(_with_js(port, add))


def stored(port: int) -> list[dict[str, Any]]:
    async def read(js: Any) -> list[dict[str, Any]]:
        info = await js.stream_info(STREAM)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(STREAM, seq)
            out.append(json.loads(msg.data))
        return out
    result: list[dict[str, Any]] = asyncio.run(_with_js(port, read))
    return result


def test_jetstream_gets_every_alert_across_a_server_outage(built_objects: None, tmp_path: Path) -> None:
    port = free_port()
    server = serve(tmp_path, port)
    create_stream(port)
    ground = tmp_path / "alerts.jsonl"
    agent = start_agent(tmp_path, [f"jsonl:{ground}", f"nats://127.0.0.1:{port}/{SUBJECT},stream={STREAM},"
                                   "timeout=2s,backoff_max=1s"])
    try:
        trigger(agent.watched, 20, rate=20)           # 1 s up
        wait_until(lambda: len(stored(port)) == 20, 10, "JetStream did not store the first 20 alerts")
        stop_server(server)
        trigger(agent.watched, 60, rate=20)           # 3 s down: spooled
        server = serve(tmp_path, port)                # same store: the stream is still there
        trigger(agent.watched, 20, rate=20)           # 1 s up again
        wait_until(lambda: len(stored(port)) >= 100, 30, "JetStream did not get the 100 alerts")
        stderr = agent.stop()
        messages = stored(port)
    finally:
        stop_server(server)
    expected = [a for a in read_jsonl(ground) if a["rule_id"] == RULE]
    assert len(expected) == 100
    assert [m["timestamp"] for m in messages] == [a["timestamp"] for a in expected]   # once each, in order
    assert messages == expected
    assert "spooling to" in stderr and "delivering again after" in stderr

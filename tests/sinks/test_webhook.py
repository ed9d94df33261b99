"""http(s):// webhook sink against a real HTTPS server (a self-signed
certificate the test makes), in ndjson, JSON-array and Falco shapes; the
server goes down for 10 s and comes back: every alert arrives once, in
order (the disk spool holds them meanwhile)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sinkutil import RULE, free_port, read_jsonl, start_agent, start_server, stop_server, trigger, wait_until

pytestmark = pytest.mark.root

SERVER = str(Path(__file__).with_name("webhook_server.py"))
TOKEN = "Bearer test-token-7f3a"


def make_cert(d: Path) -> tuple[Path, Path]:
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-days", "2",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def serve(d: Path, port: int, cert: Path, key: Path) -> subprocess.Popen[bytes]:
    proc = start_server([sys.executable, SERVER, str(port), str(cert), str(key), str(d / "posts.jsonl")],
                        d / "server.out")

    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_until(up, 20, "the webhook server did not listen")
    return proc


def received(d: Path, path: str) -> list[dict[str, Any]]:
    """The documents POSTed to ``path``, in arrival order."""
    docs: list[dict[str, Any]] = []
    for post in read_jsonl(d / "posts.jsonl"):
        if post["path"] != path:
            continue
        assert post["authorization"] == TOKEN
        if post["content_type"] == "application/x-ndjson":
            docs += [json.loads(line) for line in post["body"].splitlines() if line]
        else:
            body = json.loads(post["body"])
            docs += body if isinstance(body, list) else [body]
    return docs


def _outputs(port: int, cert: Path, *paths: str) -> list[str]:
    common = f"ca={cert},header_env=Authorization:RSAGENT_TEST_TOKEN,backoff_max=1s"
    formats = {"/ndjson": "ndjson", "/array": "array", "/falco": "falco"}
    return [f"https://127.0.0.1:{port}{p},format={formats[p]},{common}" for p in paths]


def test_webhook_batches_formats_and_tls(built_objects: None, tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    port = free_port()
    server = serve(tmp_path, port, cert, key)
    ground = tmp_path / "alerts.jsonl"
    untrusted = f"https://127.0.0.1:{port}/untrusted,spool=off"   # no ca=: the self-signed cert is refused
    agent = start_agent(tmp_path, [f"jsonl:{ground}", *_outputs(port, cert, "/ndjson", "/array", "/falco"), untrusted],
                        env={"RSAGENT_TEST_TOKEN": TOKEN})
    try:
        trigger(agent.watched, 200)              # a burst: several documents per POST
        wait_until(lambda: len(received(tmp_path, "/falco")) >= 200 and len(received(tmp_path, "/array")) >= 200
                   and len(received(tmp_path, "/ndjson")) >= 200, 30, "the webhook did not get 200 alerts")
        stderr = agent.stop()
    finally:
        stop_server(server)
    expected = [a for a in read_jsonl(ground) if a["rule_id"] == RULE]
    assert len(expected) == 200
    assert received(tmp_path, "/ndjson") == expected
    assert received(tmp_path, "/array") == expected
    falco = received(tmp_path, "/falco")
    assert [f["rule"] for f in falco] == [RULE] * 200
    assert {f["priority"] for f in falco} == {"Error"}
    assert [f["output_fields"]["open.file.path"] for f in falco] == [str(agent.watched)] * 200
    posts = [p for p in read_jsonl(tmp_path / "posts.jsonl") if p["path"] == "/ndjson"]
    assert len(posts) < 200, "documents are batched"
    assert not [p for p in read_jsonl(tmp_path / "posts.jsonl") if p["path"] == "/untrusted"]
    assert "TLS certificate not trusted" in stderr
    assert TOKEN.split()[1] not in stderr                    # the secret is never logged


@pytest.mark.slow
def test_webhook_down_for_10_s_loses_nothing(built_objects: None, tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    port = free_port()
    server = serve(tmp_path, port, cert, key)
    ground = tmp_path / "alerts.jsonl"
    agent = start_agent(tmp_path, [f"jsonl:{ground}", *_outputs(port, cert, "/ndjson", "/array")],
                        env={"RSAGENT_TEST_TOKEN": TOKEN})
    try:
        trigger(agent.watched, 40, rate=20)      # 2 s up
        stop_server(server)
        t0 = time.monotonic()
        trigger(agent.watched, 200, rate=20)     # 10 s down
        assert time.monotonic() - t0 >= 9.9
        server = serve(tmp_path, port, cert, key)
        trigger(agent.watched, 40, rate=20)      # 2 s up again
        wait_until(lambda: len(received(tmp_path, "/array")) >= 280 and len(received(tmp_path, "/ndjson")) >= 280,
                   30, "the webhook did not get the 280 alerts")
        time.sleep(0.5)
        stderr = agent.stop()
    finally:
        stop_server(server)
    expected = [a for a in read_jsonl(ground) if a["rule_id"] == RULE]
    assert len(expected) == 280
    for path in ("/ndjson", "/array"):
        got = received(tmp_path, path)
        assert [a["timestamp"] for a in got] == [a["timestamp"] for a in expected], path  # once each, in order
        assert got == expected
    # One log line per sink for the outage, one for the recovery.
    for path in ("/ndjson", "/array"):
        name = f"https://127.0.0.1:{port}{path}"
        assert sum(1 for line in stderr.splitlines() if f"sink {name}: POST" in line) == 1, stderr
        assert f"sink {name}: delivering again after" in stderr

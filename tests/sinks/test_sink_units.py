"""The sinks' parts that need no kernel: --output parsing, the disk spool,
message formats, severities, safe file opening (real files, real dirs)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from agent.metrics import Registry
from agent.safefile import UnsafePath, open_append, write_replace
from agent.sinks import SinkError, Sinks
from agent.sinks.http import falco_event
from agent.sinks.record import Record, record_of, severity_of
from agent.sinks.spec import SinkSpec, redact
from agent.sinks.spool import Spool
from agent.sinks.syslog import FACILITIES, SyslogTransport


def rec(i: int, size: int = 10) -> Record:
    return Record(json.dumps({"i": i, "pad": "x" * size}).encode(), 3, 1_700_000_000_000_000_000 + i, "rule_a")


def test_options_are_parsed_and_checked() -> None:
    spec = SinkSpec.parse("https://h:1/p?a=b,format=array,header=X-A:1,header=X-B:2,timeout=500ms,spool_max=64k")
    assert spec.target == "https://h:1/p?a=b"
    assert spec.choice("format", ("ndjson", "array")) == "array"
    assert spec.all("header") == ["X-A:1", "X-B:2"]
    assert spec.duration("timeout", 1) == 0.5
    assert spec.size("spool_max", 1) == 64 << 10
    with pytest.raises(SinkError, match="unknown option"):
        SinkSpec.parse("jsonl:/x,colour=red").check_used()
    with pytest.raises(SinkError, match="expected a size"):
        SinkSpec.parse("x,spool_max=lots").size("spool_max", 1)


@pytest.mark.parametrize("spec, message", [
    ("kafka:x", "unknown sink"),
    ("jsonl:", "needs a file path"),
    ("syslog:udp://nohostport", "expected syslog:"),
    ("nats://127.0.0.1:4222/", "SUBJECT"),
    ("https://127.0.0.1:1/x,format=xml,spool=off", "format=xml"),
    ("https://127.0.0.1:1/x,header_env=Authorization:RSAGENT_NO_SUCH_VAR,spool=off", "RSAGENT_NO_SUCH_VAR is not set"),
    ("https://127.0.0.1:1/x,ca=/nonexistent/ca.pem,spool=off", "TLS set-up"),
    ("jsonl:/tmp/x.jsonl,queue=0", "queue=0"),
])
def test_bad_outputs_are_usage_errors(spec: str, message: str) -> None:
    with pytest.raises(SinkError, match=message):
        Sinks([spec])


def test_the_same_sink_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="given twice"):
        Sinks([f"jsonl:{tmp_path}/a", f"jsonl:{tmp_path}/a"])


def test_logged_names_carry_no_secret() -> None:
    assert redact("https://user:s3cret@h:8443/in?token=t0k,header=Authorization:Bearer x") == \
        "https://user@h:8443/in,header=..."
    assert "s3cret" not in redact("nats://a:s3cret@h:4222/subj")


def test_severity_comes_from_the_rule_tags() -> None:
    assert severity_of({"rule_id": "r", "rule_tags": {"severity": "critical"}}) == 2
    assert severity_of({"rule_id": "r", "rule_tags": {"severity": "HIGH"}}) == 3
    assert severity_of({"rule_id": "r", "rule_tags": {"priority": "notice"}}) == 5
    assert severity_of({"rule_id": "r", "rule_tags": {"severity": "1"}}) == 1
    assert severity_of({"rule_id": "r", "rule_tags": {}}) == 4
    assert severity_of({"type": "open"}) == 6


def test_rfc5424_message() -> None:
    t = SyslogTransport("udp", ("127.0.0.1", 514), facility=FACILITIES["auth"], hostname="host one", app="rsagent")
    r = record_of({"rule_id": "shell_in_container", "rule_tags": {"severity": "critical"},
                   "timestamp": 1_764_280_000_123_456_789, "event": {"type": "exec"}})
    msg = t.format(r).decode()
    head, _, body = msg.partition("] ")
    pri_version, ts, host, app, procid, msgid, sd = head.split(" ", 6)
    assert pri_version == "<34>1"  # auth (4) * 8 + critical (2) = 34; version 1
    assert ts == "2025-11-27T21:46:40.123456Z"
    assert host == "host_one" and app == "rsagent" and procid == str(os.getpid())
    assert msgid == "shell_in_container"
    assert sd.startswith('[origin software="rsagent"')
    assert json.loads(body)["rule_id"] == "shell_in_container"


def test_falco_shaped_event() -> None:
    r = record_of({"rule_id": "cred_read", "rule_tags": {"severity": "high", "technique": "T1003"},
                   "rule_description": "A credential file was read", "timestamp": 1_764_280_000_123_456_789,
                   "event": {"type": "open", "open": {"file": {"path": "/etc/shadow"}},
                             "process": {"pid": 42, "comm": "cat", "file": {"path": "/usr/bin/cat"}}}})
    ev = json.loads(falco_event(r, "node1"))
    assert ev["rule"] == "cred_read" and ev["priority"] == "Error" and ev["source"] == "rsagent"
    assert ev["time"] == "2025-11-27T21:46:40.123456789Z"
    assert ev["output"].startswith("A credential file was read (") and "open.file.path=/etc/shadow" in ev["output"]
    assert ev["output_fields"]["process.comm"] == "cat" and ev["output_fields"]["proc.pid"] == 42
    assert ev["tags"] == ["severity:high", "technique:T1003"] and ev["hostname"] == "node1"


def test_spool_keeps_order_across_segments_and_restarts(tmp_path: Path) -> None:
    d = tmp_path / "spool"
    s = Spool(d, 1 << 20, segment_bytes=1000)
    assert s.append([rec(i) for i in range(50)]) == 50
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    files = sorted(p for p in d.iterdir() if p.suffix == ".spool")
    assert len(files) > 1 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    got = s.peek(7, 1 << 20)
    assert [json.loads(r.data)["i"] for r in got] == list(range(7))
    assert got[0].severity == 3 and got[0].name == "rule_a" and got[0].timestamp == rec(0).timestamp
    s.commit(3)                        # three delivered; the other four are read again
    s.close()
    s = Spool(d, 1 << 20, segment_bytes=1000)   # a restart
    assert s.records == 47
    out = []
    while s.pending():
        batch = s.peek(5, 1 << 20)
        out += [json.loads(r.data)["i"] for r in batch]
        s.commit(len(batch))
    assert out == list(range(3, 50))
    assert not [p for p in d.iterdir() if p.suffix == ".spool"]
    s.close()


def test_spool_is_bounded_and_locked(tmp_path: Path) -> None:
    s = Spool(tmp_path / "sp", 2000)
    n = s.append([rec(i, 100) for i in range(100)])
    assert 0 < n < 100 and s.bytes <= 2000
    with pytest.raises(SinkError, match="in use by another rsagent"):
        Spool(tmp_path / "sp", 2000)
    s.close()


def test_spool_drops_a_torn_tail(tmp_path: Path) -> None:
    s = Spool(tmp_path / "sp", 1 << 20)
    s.append([rec(1), rec(2)])
    s.close()
    seg = next(p for p in (tmp_path / "sp").iterdir() if p.suffix == ".spool")
    with open(seg, "ab") as f:
        f.write(b"\x00\x00\x01\x00\x03")   # half a header: a crash mid-write
    s = Spool(tmp_path / "sp", 1 << 20)
    assert s.records == 2
    assert [json.loads(r.data)["i"] for r in s.peek(10, 1 << 20)] == [1, 2]
    s.close()


def test_spool_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "theirs"
    d.mkdir()
    os.chown(d, 65534, 65534)
    with pytest.raises(SinkError, match="owned by uid 65534"):
        Spool(d, 1 << 20)


def test_sink_files_are_private_and_never_symlinks(tmp_path: Path) -> None:
    fd = open_append(tmp_path / "new" / "alerts.jsonl")
    os.close(fd)
    assert stat.S_IMODE((tmp_path / "new" / "alerts.jsonl").stat().st_mode) == 0o600
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(UnsafePath, match="is a symlink"):
        open_append(tmp_path / "link")
    theirs = tmp_path / "theirs.jsonl"
    theirs.write_text("")
    os.chown(theirs, 65534, 65534)
    with pytest.raises(UnsafePath, match="owned by uid 65534"):
        open_append(theirs)
    os.link(victim, tmp_path / "hard")
    with pytest.raises(UnsafePath, match="hard links"):
        open_append(tmp_path / "hard")
    assert victim.read_text() == "keep\n"


def test_ready_file_replaces_a_symlink_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    ready = tmp_path / "ready"
    ready.symlink_to(victim)
    write_replace(ready, "123\n")
    assert not ready.is_symlink() and ready.read_text() == "123\n"
    assert victim.read_text() == "keep\n"
    assert stat.S_IMODE(ready.stat().st_mode) == 0o644


def test_queue_bound_counts_drops(tmp_path: Path) -> None:
    """A sink whose queue is full drops new documents and counts them per sink
    (a FIFO nobody reads: the sink's thread blocks writing to it)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    reg = Registry()
    sinks = Sinks([f"jsonl:{fifo},queue=10", f"jsonl:{tmp_path}/all.jsonl"], metrics=reg, drain_timeout=0.5)
    try:
        big = {"rule_id": "r", "timestamp": 1, "pad": "x" * 10000}
        for _ in range(200):
            sinks.write(big)
        name = f"jsonl:{fifo}"
        # up to 64 KiB in the pipe, 10 queued, one batch held by the blocked thread
        assert reg.value("sink_dropped_total", sink=name, reason="queue_full") >= 200 - 10 - 7 - 1024
        assert reg.value("sink_dropped_total", sink=name, reason="queue_full") > 0
    finally:
        os.close(reader)   # the blocked write fails (EPIPE): the sink closes
        sinks.close()
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 200

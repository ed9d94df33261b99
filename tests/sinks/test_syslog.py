"""syslog: RFC 5424 alerts received by a real rsyslog (Debian's), started by
the test, over a unix datagram socket, UDP and TCP (octet-counted)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from pathlib import Path

import pytest
from sinkutil import RULE, free_port, read_jsonl, start_agent, start_server, stop_server, trigger, wait_until

pytestmark = pytest.mark.root

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
# Every field rsyslog parsed from the RFC 5424 header, then the message.
TEMPLATE = "%syslogseverity% %syslogfacility-text% %app-name% %procid% %msgid% %timereported:::date-rfc3339% " \
           "%structured-data% %msg%\\n"


def rsyslog_config(d: Path, udp: int, tcp: int) -> Path:
    conf = d / "rsyslog.conf"
    (d / "work").mkdir()
    rulesets = "\n".join(
        f'ruleset(name="{n}") {{ action(type="omfile" file="{d}/{n}.log" template="fields") }}'
        for n in ("unix", "udp", "tcp"))
    conf.write_text(f"""
global(workDirectory="{d}/work" maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp")
template(name="fields" type="string" string="{TEMPLATE}")
{rulesets}
input(type="imuxsock" Socket="{d}/log.sock" UseSpecialParser="off" ParseHostname="on" Ruleset="unix")
input(type="imudp" Address="127.0.0.1" Port="{udp}" Ruleset="udp")
input(type="imtcp" Address="127.0.0.1" Port="{tcp}" Ruleset="tcp")
""")
    return conf


def test_rsyslog_receives_rfc5424_alerts_over_unix_udp_and_tcp(built_objects: None, tmp_path: Path) -> None:
    udp, tcp = free_port(), free_port()
    conf = rsyslog_config(tmp_path, udp, tcp)
    server = start_server([RSYSLOGD, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslog.pid")],
                          tmp_path / "rsyslog.out")

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", tcp), timeout=0.2).close()
        except OSError:
            return False
        return (tmp_path / "log.sock").exists()

    wait_until(listening, 20, "rsyslog did not listen")
    ground = tmp_path / "alerts.jsonl"
    agent = start_agent(tmp_path, [f"jsonl:{ground}", f"syslog:{tmp_path}/log.sock",
                                   f"syslog:udp://127.0.0.1:{udp}", f"syslog:tcp://127.0.0.1:{tcp},facility=local3"])
    try:
        trigger(agent.watched, 5, rate=20)
        logs = {n: tmp_path / f"{n}.log" for n in ("unix", "udp", "tcp")}
        # Promptly: each message goes out as it comes (a TCP write once waited
        # 10 s per message on a liveness check).
        wait_until(lambda: all(p.exists() and len(p.read_text().splitlines()) >= 5 for p in logs.values()), 10,
                   "rsyslog did not get 5 alerts on each input")
        time.sleep(0.3)
        agent.stop()
    finally:
        stop_server(server)
    expected = [a for a in read_jsonl(ground) if a["rule_id"] == RULE]
    assert len(expected) == 5
    for name, path in logs.items():
        lines = path.read_text().splitlines()
        assert len(lines) == 5, (name, lines)
        for line, want in zip(lines, expected):
            severity, facility, app, procid, msgid, ts, rest = line.split(" ", 6)
            assert severity == "3"            # tags: {severity: high} -> err
            assert facility == ("local3" if name == "tcp" else "auth")
            assert app == "rsagent" and procid == str(agent.proc.pid) and msgid == RULE
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|\+00:00)", ts), ts
            sd, _, msg = rest.partition("] ")
            assert sd.startswith('[origin software="rsagent"')
            alert = json.loads(msg)            # the whole alert, not truncated
            assert alert == want
            assert alert["event"]["open"]["file"]["path"] == str(agent.watched)

"""`rulec replay --report`: the page renders in headless Chromium (Debian's
`chromium`, installed by `make setup`) without console errors or network
requests, the screenshot is not blank, and the DOM holds the replay's
per-rule counts, the diff and the sample process trees."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

from agent.capture import CaptureWriter, header

RULEC = str(Path(sys.executable).parent / "rulec")
T0 = 1_800_000_000_000_000_000


def _proc(pid: int, comm: str, exe: str) -> dict[str, Any]:
    return {"pid": pid, "comm": comm, "file": {"path": exe, "name": os.path.basename(exe)}}


def _doc(i: int, path: str, comm: str) -> dict[str, Any]:
    proc = _proc(1000 + i, comm, f"/usr/bin/{comm}")
    proc["ancestors"] = [_proc(900, "bash", "/usr/bin/bash"), _proc(800, "sshd", "/usr/sbin/sshd"),
                         _proc(1, "systemd", "/usr/lib/systemd/systemd")]
    return {"type": "open", "timestamp": T0 + i * 1_000_000_000, "process": proc,
            "open": {"file": {"path": path, "name": os.path.basename(path)}, "flags": 1}}


def _capture(path: Path) -> None:
    w = CaptureWriter(path, header(command="record", hook_set="tracepoint", event_types=None, filters=None))
    for i in range(60):
        w.event(_doc(i, "/etc/shadow" if i % 10 == 0 else f"/etc/app/{i}.conf", "cat" if i % 2 else "vi"))
    w.close()


def _png_is_blank(png: bytes) -> bool:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + n]
        pos += 12 + n
    pixels = zlib.decompress(idat)
    return len(set(pixels)) < 16


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium is not None, "Debian's chromium is missing: run `make setup`"
    capture = tmp_path / "c.capture"
    _capture(capture)
    policy, baseline = tmp_path / "p.policy", tmp_path / "b.policy"
    policy.write_text('rules:\n  - id: shadow\n    expression: open.file.path == "/etc/shadow"\n'
                      '  - id: conf_by_vi\n    expression: open.file.path =~ "/etc/app/*.conf" && process.comm == "vi"\n')
    baseline.write_text('rules:\n  - id: shadow\n    expression: open.file.path == "/etc/shadow"\n'
                        '  - id: conf\n    expression: open.file.path =~ "/etc/app/*.conf"\n')
    report = tmp_path / "report.html"
    out = subprocess.run([RULEC, "replay", str(capture), "--policy", str(policy), "--baseline", str(baseline),
                          "--format", "json", "--report", str(report)], check=True, capture_output=True, text=True)
    counts = {r: v["alerts"] for r, v in json.loads(out.stdout)["policy"]["rules"].items()}
    assert counts == {"shadow": 6, "conf_by_vi": 24}
    page = report.read_text()
    assert not re.search(r"""(src|href)\s*=|url\(|<script|@import""", page), "the page must be self-contained"

    shot = tmp_path / "shot.png"
    run = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--enable-logging=stderr", "--v=0", "--window-size=1200,1600",
                          f"--screenshot={shot}", f"file://{report}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "CONSOLE" not in run.stderr, run.stderr
    assert not _png_is_blank(shot.read_bytes())
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", f"file://{report}"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    for rule, n in counts.items():
        assert re.search(rf'<tr data-rule="{rule}">.*?<td class="n alerts" data-count="{n}">{n}</td>', dom), rule
    assert '<td class="n baseline" data-count="54">54</td>' in dom          # the removed rule `conf`
    assert 'id="diff" data-new="24" data-vanished="54"' in dom
    assert dom.count('<div class="tree" data-rule="shadow">') == 3           # sample alerts per rule
    assert "sshd (800) /usr/sbin/sshd" in dom and 'class="event"' in dom
    assert dom.count("<rect") > 10                                          # the chart's bars

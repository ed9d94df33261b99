"""Nothing of ours stays on any interface: after a stop (SIGTERM), and after
kill -9, once the next agent has started (it removes what the dead one left:
its filters by name, the clsact qdiscs its state file lists)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab import Lab
from nettrace import NetTracer

from agent.net.owners import STATE_DIR

pytestmark = pytest.mark.root

RSAGENT = str(Path(sys.executable).parent / "rsagent")


@pytest.fixture(scope="module")
def bare_lab(built_objects: None) -> Iterator[Lab]:
    """A lab of its own, without dnsmasq or a module-wide agent."""
    lab = Lab(tag=f"{os.getpid() % 100000}x", subnet=20 + (os.getpid() + 101) % 200).up()
    try:
        yield lab
    finally:
        lab.down()


def start_trace(lab: Lab, tmp: Path) -> subprocess.Popen[str]:
    ready = tmp / "ready"
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen([RSAGENT, "trace", "-v", "--event-type", "dns", "--netns", lab.client_ns,
                             "--netns", lab.server_ns, "--ready-file", str(ready), "--output",
                             f"jsonl:{tmp / 'trace.jsonl'}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"rsagent trace exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        assert time.monotonic() < deadline, "rsagent trace not ready within 60 s"
        time.sleep(0.05)
    return proc


def nothing_of_ours(lab: Lab) -> None:
    for ns in (lab.client_ns, lab.server_ns):
        assert lab.ours(ns) == {}, f"filters left in {ns}"
        assert lab.clsact(ns) == [], f"clsact qdiscs left in {ns}"


def test_in_process_stop_removes_everything(bare_lab: Lab) -> None:
    nothing_of_ours(bare_lab)
    t = NetTracer((bare_lab.client_ns, bare_lab.server_ns), frozenset({"dns"})).start()
    try:
        on = bare_lab.ours(bare_lab.client_ns)
        assert set(on) == {"lo", bare_lab.client_if} and all(f"rsagent:{os.getpid()}:" in v[0] for v in on.values())
    finally:
        t.stop()
    nothing_of_ours(bare_lab)


def test_sigterm_removes_everything(bare_lab: Lab, tmp_path: Path) -> None:
    proc = start_trace(bare_lab, tmp_path)
    assert set(bare_lab.ours(bare_lab.server_ns)) == {"lo", bare_lab.server_if}
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    nothing_of_ours(bare_lab)
    assert not list(STATE_DIR.glob(f"{proc.pid}-*.json"))


def test_kill_9_leftovers_are_removed_by_the_next_start(bare_lab: Lab, tmp_path: Path) -> None:
    dead = start_trace(bare_lab, tmp_path)
    dead.kill()
    dead.wait(30)
    # what a crash leaves: our filters, the qdiscs we created, the state file
    left = bare_lab.ours(bare_lab.client_ns)
    assert set(left) == {"lo", bare_lab.client_if} and all(f"rsagent:{dead.pid}:" in v[0] for v in left.values())
    assert len(bare_lab.clsact(bare_lab.client_ns)) == 2
    assert list(STATE_DIR.glob(f"{dead.pid}-*.json"))
    nxt = start_trace(bare_lab, tmp_path)
    try:
        for ns in (bare_lab.client_ns, bare_lab.server_ns):
            for lines in bare_lab.ours(ns).values():
                assert len(lines) == 1 and f"rsagent:{nxt.pid}:" in lines[0], lines
        assert not list(STATE_DIR.glob(f"{dead.pid}-*.json"))
    finally:
        nxt.send_signal(signal.SIGTERM)
        _, err = nxt.communicate(timeout=60)
    assert nxt.returncode == 0, err
    assert "removed 8 tc filter(s) and 4 clsact qdisc(s) left by agents that did not stop cleanly" in err
    nothing_of_ours(bare_lab)

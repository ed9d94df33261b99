"""Exit code and killing signal of whole processes (issue 5)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root


def _exit_of(col, pid: int) -> dict:
    exits = col.of_type("exit", lambda d: d["process"]["pid"] == pid)
    assert len(exits) == 1
    return exits[0]


def test_exit_code(tracer) -> None:
    with tracer.collect() as col:
        proc = subprocess.Popen(["sh", "-c", "exit 3"])
        assert proc.wait() == 3
    doc = _exit_of(col, proc.pid)
    assert (doc["exit"]["cause"], doc["exit"]["code"]) == ("EXITED", 3)
    assert doc["exit"]["pid"] == proc.pid and doc["exit"]["argv"] == ["sh", "-c", "exit 3"]


def test_killing_signal(tracer) -> None:
    with tracer.collect() as col:
        proc = subprocess.Popen(["sleep", "30"])
        tracer.sync()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    doc = _exit_of(col, proc.pid)
    assert (doc["exit"]["cause"], doc["exit"]["code"]) == ("SIGNALED", signal.SIGKILL)


def test_exit_group_from_a_thread_is_one_exit_with_its_code(tracer) -> None:
    code = ("import os, threading, time\n"
            "threading.Thread(target=lambda: os._exit(5)).start()\n"
            "time.sleep(10)\n")
    with tracer.collect() as col:
        proc = subprocess.Popen([sys.executable, "-c", code])
        assert proc.wait() == 5
    doc = _exit_of(col, proc.pid)
    assert (doc["exit"]["cause"], doc["exit"]["code"]) == ("EXITED", 5)

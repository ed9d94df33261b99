"""Helpers shared by the process-monitoring tests (issue 5)."""

from __future__ import annotations

import os
from pathlib import Path

DASH = os.path.realpath("/bin/sh")
TRUE = os.path.realpath("/bin/true")


def kernel_ppid(pid: int) -> int:
    data = Path(f"/proc/{pid}/stat").read_bytes()
    return int(data[data.rfind(b")") + 2 :].split()[1])


def pids(ancestors: list[dict]) -> list[int]:
    return [a["pid"] for a in ancestors]

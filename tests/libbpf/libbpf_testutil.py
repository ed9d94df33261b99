"""Helpers shared by the libbpf binding tests (a uniquely named module, not conftest)."""

from __future__ import annotations

import json
import os
import subprocess


def open_fds() -> set[str]:
    """This process's open fds (the listing's own fd is transient and excluded by diffing)."""
    return set(os.listdir("/proc/self/fd"))


def bpf_prog_names() -> set[str]:
    """Names of every BPF program loaded in the kernel (bpftool)."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], check=True, capture_output=True, text=True).stdout
    return {p.get("name", "") for p in json.loads(out or "[]")}

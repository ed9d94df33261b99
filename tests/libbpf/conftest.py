"""Fixtures of the libbpf binding tests: BPF objects compiled with clang-19.

These tests run as root on the real kernel (tier 3 of the project's tests):
nothing is mocked and nothing is skipped for lack of privileges.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cffi import FFI

from agent.libbpf import BpfObject, load_object

BPF_DIR = Path(__file__).parent / "bpf"
REPO = Path(__file__).resolve().parents[2]
CLANG = os.environ.get("CLANG", "clang-19")
CFLAGS = ["-g", "-O2", "-Wall", "-Werror", "-target", "bpf", "-D__TARGET_ARCH_x86"]


@pytest.fixture(scope="session")
def bpf_objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tests/libbpf/bpf/*.bpf.c compiled once per session, by stem."""
    out = tmp_path_factory.mktemp("libbpf-bpf")
    jobs = []
    for src in sorted(BPF_DIR.glob("*.bpf.c")):
        obj = out / (src.name[: -len(".c")] + ".o")
        includes = ["-I", str(REPO / "vmlinux" / "x86_64"), "-I", str(BPF_DIR)]
        cmd = [CLANG, *CFLAGS, *includes, "-c", str(src), "-o", str(obj)]
        jobs.append((src, obj, subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)))
    objects = {}
    for src, obj, proc in jobs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            pytest.fail(f"{CLANG} failed on {src.name}:\n{err}")
        objects[src.name[: -len(".bpf.c")]] = obj
    return objects


@pytest.fixture(scope="session")
def event_ffi() -> FFI:
    """cffi of bpf/rb_event.h, read from the header the BPF side includes."""
    ffi = FFI()
    header = (BPF_DIR / "rb_event.h").read_text()
    ffi.cdef(
        "typedef unsigned char __u8; typedef unsigned int __u32; typedef unsigned long long __u64;\n"
        + "\n".join(line for line in header.splitlines() if not line.startswith("#"))
    )
    return ffi


@pytest.fixture
def rb_obj(bpf_objects: dict[str, Path]) -> Iterator[BpfObject]:
    """ringbuf_pid.bpf.o loaded for this process and attached."""
    with load_object(
        bpf_objects["ringbuf_pid"],
        variables={"target_pid": os.getpid(), "magic": 0xFEEDFACE, "tag": b"pytest"},
        attach=True,
    ) as obj:
        yield obj

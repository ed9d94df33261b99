"""io_uring events from a real ring (tests/kernel/c/uring.c: raw syscalls):
the ring set up, an open submitted through it (a file access no openat(2)
hook sees: its path is reported), a request the kernel refuses (-EINVAL),
plain requests."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
from kutil import assert_context, mine, run_uring, syscall, uring_helper

from codegen.constants import lookup

pytestmark = pytest.mark.root

EINVAL = 22


def _c(name: str) -> int:
    v = lookup(name)
    assert v is not None
    return v


@pytest.fixture(scope="module")
def uring(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return uring_helper(tmp_path_factory.mktemp("uring"))


def test_setup_and_an_open_submitted_through_the_ring(tracer, uring: Path, tmp_path: Path) -> None:
    target = tmp_path / "opened-by-io_uring"
    target.write_text("x")
    with tracer.collect() as col:
        pid, results = run_uring(uring, "open", str(target))
    assert len(results) == 1 and results[0] >= 0
    docs = mine(col, "io_uring", pid)
    setups = [d for d in docs if d["io_uring"]["action"] == "setup"]
    assert len(setups) == 1
    setup = setups[0]["io_uring"]
    assert setup["retval"] >= 3 and setup["entries"] == 8 and setup["op"] == -1
    assert_context(setups[0], pid)
    submits = [d for d in docs if d["io_uring"]["action"] == "submit"]
    assert len(submits) == 1
    s = submits[0]["io_uring"]
    assert s["op"] == _c("IORING_OP_OPENAT") and s["retval"] == 0 and s["user_data"] == 42
    assert s["file"]["path"] == str(target) and s["file"]["path_source"] == "user"
    assert s["dfd"] == -100
    assert submits[0]["process"]["pid"] == pid and submits[0]["process"]["file"]["path"] == str(uring)
    # the open itself never went through openat(2): no open event for it
    assert not [d for d in mine(col, "open", pid) if d["open"]["file"]["path"] == str(target)]


def test_refused_request_reports_negative_errno(tracer, uring: Path) -> None:
    with tracer.collect() as col:
        pid, results = run_uring(uring, "badop")
    assert results == [-EINVAL]
    submits = [d["io_uring"] for d in mine(col, "io_uring", pid) if d["io_uring"]["action"] == "submit"]
    assert submits == [{"action": "submit", "op": 250, "flags": 0, "retval": -EINVAL, "user_data": 43}]


def test_every_request_is_reported(tracer, uring: Path) -> None:
    with tracer.collect() as col:
        pid, results = run_uring(uring, "nop", "3")
    assert results == [0, 0, 0]
    submits = [d["io_uring"] for d in mine(col, "io_uring", pid) if d["io_uring"]["action"] == "submit"]
    assert sorted(s["user_data"] for s in submits) == [100, 101, 102]
    assert {s["op"] for s in submits} == {_c("IORING_OP_NOP")}


def test_failed_setup(tracer) -> None:
    params = ctypes.create_string_buffer(120)    # struct io_uring_params, zeroed
    with tracer.collect() as col:
        assert syscall("io_uring_setup", 0, params) == -EINVAL   # no entries
    setups = [d["io_uring"] for d in mine(col, "io_uring") if d["io_uring"]["action"] == "setup"]
    assert setups == [{"action": "setup", "op": -1, "flags": 0, "retval": -EINVAL, "entries": 0}]

"""The 32-bit blind spot, measured: a syscall through the compat entry
(`int $0x80` from this process, the i386 ABI) changes a file while no
syscall tracepoint fires; with the opt-in counter its call is counted under
its event type (compat_unhooked), without it nothing at all."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from kutil import Compat, nr32

pytestmark = pytest.mark.root


@pytest.fixture
def compat() -> Iterator[Compat]:
    c = Compat()
    yield c
    c.close()


def _compat(tracer) -> dict[str, int]:
    return {name: s.compat for name, s in tracer.runtime.kernel_stats().items() if s.compat}


def test_compat_syscalls_are_counted_not_reported(built_objects: None, compat: Compat, tmp_path: Path) -> None:
    from harness import Tracer

    f = tmp_path / "f"
    f.write_text("x")
    t = Tracer({"chmod", "unlink", "open"}, count_compat=True).start()
    try:
        assert "rs_compat_exit" in t.runtime.programs()
        with t.collect() as col:
            assert compat(nr32("chmod"), compat.string(f), 0o600) == 0
            assert compat(nr32("chmod"), compat.string(f), 0o640) == 0
            assert compat(nr32("unlink"), compat.string(tmp_path / "missing")) == -2
            os.chmod(f, 0o644)               # the 64-bit call: reported as always
        assert stat.S_IMODE(f.stat().st_mode) == 0o644
        chmods = [d for d in col.of_type("chmod") if d["process"]["pid"] == os.getpid()]
        assert [d["chmod"]["file"]["destination"]["mode"] for d in chmods] == [0o644]
        assert not [d for d in col.of_type("unlink") if d["unlink"]["file"]["path"] == str(tmp_path / "missing")]
        counted = _compat(t)
        assert counted.get("chmod", 0) >= 2 and counted.get("unlink", 0) >= 1
    finally:
        t.stop()


def test_without_the_counter_compat_calls_leave_no_trace(tracer, compat: Compat, tmp_path: Path) -> None:
    f = tmp_path / "g"
    f.write_text("x")
    assert "rs_compat_exit" not in tracer.runtime.programs()
    before = _compat(tracer)
    with tracer.collect() as col:
        assert compat(nr32("chmod"), compat.string(f), 0o600) == 0
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert not [d for d in col.of_type("chmod") if d["chmod"]["file"]["path"] == str(f)]
    assert _compat(tracer) == before == {}

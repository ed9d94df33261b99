"""libbpf's log output reaches Python logging."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.libbpf import BpfObject, VerifierError, capture, try_load

pytestmark = [pytest.mark.clang, pytest.mark.root]

LOGGER = "agent.libbpf.libbpf"


def test_libbpf_warnings_are_logged(bpf_objects: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with pytest.raises(VerifierError):
        BpfObject(bpf_objects["verifier_reject"]).load()
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert any("prog 'vr_bad': BPF program load failed" in m for m in warnings)
    assert any("-- BEGIN PROG LOAD LOG --" in m for m in warnings)  # a long message, formatted in C
    assert not any(m.startswith("libbpf: ") for m in warnings)
    debug = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.DEBUG]
    assert debug  # libbpf's DEBUG level is forwarded too


def test_probes_log_their_failures_at_debug(bpf_objects: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    assert not try_load(bpf_objects["fentry"], "fe_nanosleep").ok
    mine = [r for r in caplog.records if r.name == LOGGER]
    assert mine and all(r.levelno == logging.DEBUG for r in mine)


def test_capture_collects_lines(bpf_objects: dict[str, Path]) -> None:
    with capture() as log:
        BpfObject(bpf_objects["kinds"]).close()
    assert "kinds" in log.text()


def test_log_level_4_reports_verifier_statistics(bpf_objects: dict[str, Path]) -> None:
    with BpfObject(bpf_objects["ringbuf_pid"]) as obj:
        for prog in obj.programs.values():
            prog.set_log_level(4)
        with capture() as log:
            obj.load()
        stats = {s.program: s for s in log.verifier_stats()}
    assert set(stats) == set(obj.programs)
    for s in stats.values():
        assert s.insns > 0 and s.usec >= 0


def test_default_log_level_reports_no_statistics(bpf_objects: dict[str, Path]) -> None:
    with BpfObject(bpf_objects["ringbuf_pid"]) as obj, capture() as log:
        obj.load()
    assert log.verifier_stats() == []

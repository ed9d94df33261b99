"""The spec layer and the pure-Python parts: no load needed."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from agent.libbpf import (
    BpfError,
    BpfObject,
    NotSupportedError,
    ObjectSpec,
    VerifierError,
    libbpf_version,
    libbpf_version_string,
)
from agent.libbpf.errors import summarize_verifier_log

pytestmark = [pytest.mark.clang]


def test_spec_lists_programs_maps_and_globals(bpf_objects: dict[str, Path]) -> None:
    spec = ObjectSpec.from_file(bpf_objects["ringbuf_pid"])
    prog = spec.program("handle_getppid")
    assert (prog.section, prog.type, prog.kind) == ("tracepoint/syscalls/sys_enter_getppid", "tracepoint", "tracepoint")
    assert prog.autoload and prog.insn_count > 10
    maps = {m.name: m for m in spec.maps}
    assert maps["events"].type == "ringbuf" and maps["events"].max_entries == 64 * 1024
    assert (maps["hash_map"].type, maps["hash_map"].key_size, maps["hash_map"].value_size) == ("hash", 4, 8)
    assert maps["percpu_map"].type == "percpu_array"
    assert {".rodata", ".data", ".bss"} <= set(maps) and maps[".rodata"].internal
    target = spec.variable("target_pid")
    assert (target.section, target.size, target.kind, target.read_only) == (".rodata", 4, "int", True)
    assert spec.variable("tag").kind == "array" and spec.variable("tag").size == 16
    assert spec.variable("hits").section == ".bss" and not spec.variable("hits").read_only
    with pytest.raises(KeyError, match="no program 'nope'"):
        spec.program("nope")


def test_spec_program_kinds(bpf_objects: dict[str, Path]) -> None:
    kinds = {p.name: (p.kind, p.type, p.attach_type) for p in ObjectSpec.from_file(bpf_objects["kinds"]).programs}
    assert kinds["kinds_tp"] == ("tracepoint", "tracepoint", None)
    assert kinds["kinds_tp_btf"] == ("tp_btf", "tracing", "trace_raw_tp")
    assert kinds["kinds_raw_tp"][:2] == ("raw_tp", "raw_tracepoint")
    fentry = ObjectSpec.from_file(bpf_objects["fentry"]).program("fe_nanosleep")
    assert (fentry.kind, fentry.type, fentry.attach_type) == ("fentry", "tracing", "trace_fentry")


def test_spec_is_readable_without_root(bpf_objects: dict[str, Path]) -> None:
    """bpf_object__open does no bpf(2) call: an unprivileged user reads the spec."""
    shared = Path(tempfile.mkdtemp(prefix="libbpf-spec-"))
    try:
        shared.chmod(0o755)
        obj = shared / "ringbuf_pid.bpf.o"
        shutil.copy(bpf_objects["ringbuf_pid"], obj)
        obj.chmod(0o644)
        code = (
            f"import os; from agent.libbpf import ObjectSpec; s = ObjectSpec.from_file({str(obj)!r});"
            "print(os.geteuid(), [p.name for p in s.programs], len(s.maps), len(s.variables))"
        )
        repo = Path(__file__).resolve().parents[2]
        out = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-B", "-c", code],
            cwd=repo, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo)},
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split(None, 1) == ["65534", "['handle_getppid'] 8 6\n"]
    finally:
        shutil.rmtree(shared)


def test_open_missing_file_raises_bpf_error(tmp_path: Path) -> None:
    with pytest.raises(BpfError) as info:
        BpfObject(tmp_path / "missing.bpf.o")
    assert info.value.errno == errno.ENOENT
    assert info.value.op == "open object missing.bpf.o"
    assert str(info.value).endswith("no such file or directory (errno 2)")
    assert isinstance(info.value, OSError)


def test_libbpf_version() -> None:
    version = libbpf_version()
    assert version.major >= 1
    assert libbpf_version_string() == f"v{version}"


def test_error_messages_chain_context_in_lower_case() -> None:
    err = BpfError("load program handle_exec", errno.EPERM, where="load object foo.bpf.o: program handle_exec")
    assert str(err) == "load object foo.bpf.o: program handle_exec: operation not permitted (errno 1)"
    assert (err.op, err.errno) == ("load program handle_exec", errno.EPERM)
    ns = NotSupportedError("attach program x", errno.EOPNOTSUPP, "cgroup attach")
    assert isinstance(ns, BpfError) and ns.feature == "cgroup attach"
    assert "cgroup attach not supported" in str(ns)
    assert "enotsupp" in str(NotSupportedError("load program y", 524, "fentry programs"))


def test_verifier_error_keeps_full_log_and_short_message() -> None:
    log = (
        "0: R1=ctx()\n1: (79) r1 = *(u64 *)(r0 +0)\nR0 invalid mem access 'map_value_or_null'\n"
        "\nprocessed 7 insns (limit 1000000)\n"
    )
    err = VerifierError("load program p", errno.EACCES, "p", log, where="load object o.bpf.o: program p")
    assert err.log == log and err.program == "p"
    assert err.short.endswith("R0 invalid mem access 'map_value_or_null'")
    assert "processed" not in err.short
    assert str(err).startswith("load object o.bpf.o: program p: permission denied (errno 13): 0: R1=ctx()")
    assert summarize_verifier_log("") == "(empty verifier log)"


def test_missing_extension_names_the_build_command() -> None:
    code = "import sys; sys.modules['agent._libbpf_cffi'] = None; import agent.libbpf"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "BindingNotBuiltError" in out.stderr and "pip install -e ." in out.stderr

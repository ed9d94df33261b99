"""The agent refuses objects and policies someone other than root can change
(agent/trust.py), and objects whose bytes differ from the manifest's sha256:
`rsagent` as an operator starts it, each run bounded in time and memory."""
from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import trust

BIN = Path(sys.executable).parent
RSAGENT, RULEC = str(BIN / "rsagent"), str(BIN / "rulec")
NOBODY = 65534
SECONDS = 600           # a start compiles the policy's objects when they are not cached yet
MEMORY = 4 << 30        # address space of one agent run (libbpf, cffi, the ring buffer)

POLICY = 'rules:\n  - id: watched\n    expression: open.file.path == "/etc/rsagent-trust-test"\n'


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def rsagent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RSAGENT, *args], capture_output=True, text=True, timeout=SECONDS, env=env,
                          preexec_fn=_limits)


@pytest.fixture
def root_dir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path is root's and private (pytest makes it 0700 below a sticky /tmp)."""
    assert not trust.path_problems(tmp_path, "test directory"), trust.path_problems(tmp_path, "test directory")
    yield tmp_path


def _policy(d: Path, text: str = POLICY) -> Path:
    p = d / "p.policy"
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def compiled_once(tmp_path_factory: pytest.TempPathFactory, built_objects: None) -> Path:
    """`rulec compile` of POLICY, once for the module (clang takes a while)."""
    d = tmp_path_factory.mktemp("compiled")
    out = d / "compiled"
    subprocess.run([RULEC, "compile", str(_policy(d)), "-o", str(out)], check=True, capture_output=True,
                   timeout=SECONDS)
    return out


def _compiled(root_dir: Path, compiled_once: Path) -> tuple[Path, Path]:
    """(policy, a copy of the compiled directory) in the test's own directory."""
    import shutil

    out = root_dir / "compiled"
    shutil.copytree(compiled_once, out)  # modes kept (copystat)
    return _policy(root_dir), out


# --- the checks themselves ------------------------------------------------------------

def test_writable_or_foreign_components_are_named(root_dir: Path) -> None:
    d = root_dir / "a" / "b"
    d.mkdir(parents=True)
    f = d / "x.policy"
    f.write_text("x")
    assert trust.path_problems(f, "policy") == []
    os.chmod(root_dir / "a", 0o777)
    (problem,) = trust.path_problems(f, "policy")
    assert problem.component == root_dir / "a" and problem.reason == "is writable by every user (mode 0777)"
    os.chmod(root_dir / "a", 0o1777)  # sticky: others cannot replace root's entries
    assert trust.path_problems(f, "policy") == []
    os.chown(d, NOBODY, 0)
    assert [p.reason for p in trust.path_problems(f, "policy")] == ["is owned by user nobody (uid 65534)"]
    os.chown(d, 0, 0)
    os.chown(f, 0, 100)
    os.chmod(f, 0o664)
    assert [p.reason for p in trust.path_problems(f, "policy")] == ["is writable by group users (gid 100) (mode 0664)"]
    os.chown(f, 0, 0)  # group root is root's
    assert trust.path_problems(f, "policy") == []


def test_symbolic_links_are_checked_as_written_and_resolved(root_dir: Path) -> None:
    shared = root_dir / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    target = shared / "real.policy"
    target.write_text("x")
    link = root_dir / "link.policy"
    link.symlink_to(target)
    assert [p.component for p in trust.path_problems(link, "policy")] == [shared]
    os.lchown(link, NOBODY, NOBODY)
    assert link in [p.component for p in trust.path_problems(link, "policy")]


# --- the agent -------------------------------------------------------------------------

def test_a_writable_compiled_directory_is_refused(root_dir: Path, compiled_once: Path) -> None:
    policy, out = _compiled(root_dir, compiled_once)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir() if p.is_file()} == {0o600}
    os.chmod(out, 0o777)
    proc = rsagent("run", "--policy", str(policy), "--compiled", str(out))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"refusing to load compiled objects directory {out} is writable by every user (mode 0777)" in proc.stderr
    assert "--insecure-paths" in proc.stderr


def test_insecure_paths_loads_anyway_with_warnings(root_dir: Path, compiled_once: Path) -> None:
    policy, out = _compiled(root_dir, compiled_once)
    os.chmod(out, 0o777)
    ready = root_dir / "ready"
    proc = subprocess.Popen([RSAGENT, "run", "--insecure-paths", "--policy", str(policy), "--compiled", str(out),
                             "--ready-file", str(ready), "--output", f"jsonl:{root_dir / 'alerts'}"],
                            stderr=subprocess.PIPE, text=True, preexec_fn=_limits)
    try:
        deadline = time.monotonic() + SECONDS
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), proc.stderr.read() if proc.poll() is not None and proc.stderr else "not ready"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=SECONDS)
    assert proc.returncode == 0, err
    assert f"--insecure-paths: loading anyway: compiled objects directory {out} is writable by every user" in err


def test_objects_from_a_directory_others_can_write_are_refused(root_dir: Path, built_objects: None) -> None:
    from agent.build import ROOT

    objects = root_dir / "objects"
    objects.mkdir()
    for name in ("features.bpf.o", "probe.bpf.o"):
        (objects / name).write_bytes((ROOT / "build" / "ebpf" / name).read_bytes())
    os.chown(objects, 0, 100)
    os.chmod(objects, 0o775)
    env = dict(os.environ, RSAGENT_OBJECTS=str(objects))
    for command in (["probe"], ["trace"]):
        proc = rsagent(*command, env=env)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert (f"refusing to load BPF object {objects / 'features.bpf.o'}: {objects} is writable by group users "
                "(gid 100)") in proc.stderr
    proc = rsagent("probe", "--objects", str(objects))
    assert proc.returncode == 1 and "is writable by group users" in proc.stderr


def test_a_policy_owned_by_another_user_is_refused(root_dir: Path, built_objects: None) -> None:
    policy = _policy(root_dir)
    os.chown(policy, NOBODY, NOBODY)
    proc = rsagent("run", "--policy", str(policy))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"refusing to load policy {policy} is owned by user nobody (uid 65534)" in proc.stderr
    os.chown(policy, 0, 0)
    os.chmod(root_dir, 0o757)  # the directory above it: anyone could replace it
    proc = rsagent("run", "--policy", str(policy))
    assert proc.returncode == 1 and f"refusing to load policy {policy}: {root_dir} is writable by every user" in proc.stderr


def test_sighup_refuses_a_policy_that_became_writable(root_dir: Path, built_objects: None) -> None:
    first = Path("/etc/rsagent-trust-test")
    policy_dir = root_dir / "policies"
    policy_dir.mkdir()
    policy = _policy(policy_dir)
    ready, alerts = root_dir / "ready", root_dir / "alerts.jsonl"
    proc = subprocess.Popen([RSAGENT, "run", "-v", "--policy", str(policy_dir), "--ready-file", str(ready),
                             "--output", f"jsonl:{alerts}"], stderr=subprocess.PIPE, text=True, preexec_fn=_limits)
    try:
        deadline = time.monotonic() + SECONDS
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists()
        os.chmod(policy_dir, 0o777)  # someone could now switch detection off
        policy.write_text(POLICY.replace("rsagent-trust-test", "rsagent-trust-other"))
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        first.write_text("x")  # the running (first) policy still fires
        try:
            deadline = time.monotonic() + 10
            while (not alerts.exists() or "watched" not in alerts.read_text()) and time.monotonic() < deadline:
                subprocess.run(["cat", str(first)], capture_output=True, check=True)
                time.sleep(0.2)
        finally:
            first.unlink()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=SECONDS)
    assert proc.returncode == 0, err
    assert f"SIGHUP: refusing to load policy directory {policy_dir} is writable by every user" in err
    assert "still running the previous policy" in err
    assert "watched" in alerts.read_text()


def test_an_object_changed_after_compiling_is_refused(root_dir: Path, compiled_once: Path) -> None:
    policy, out = _compiled(root_dir, compiled_once)
    obj = out / "probe.bpf.o"
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF
    obj.write_bytes(bytes(data))
    proc = rsagent("run", "--policy", str(policy), "--compiled", str(out))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{obj}: sha256 " in proc.stderr and "does not match the manifest's" in proc.stderr
    assert "refusing to load it" in proc.stderr


def test_the_policy_cache_rebuilds_an_object_that_does_not_match_its_manifest(root_dir: Path,
                                                                             built_objects: None) -> None:
    from codegen.compile import compile_loaded, file_sha256
    from codegen.policy import load_policies

    result = load_policies([_policy(root_dir)])
    out = root_dir / "cache" / "x"
    first = compile_loaded(result, out)
    obj = out / "probe.bpf.o"
    good = file_sha256(obj)
    assert first.manifest.sha256["probe.bpf.o"] == good
    obj.write_bytes(obj.read_bytes() + b"tampered")  # newer than its sources: looks up to date
    again = compile_loaded(result, out)
    assert again.rebuilt and file_sha256(obj) == good == again.manifest.sha256["probe.bpf.o"]

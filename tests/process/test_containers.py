"""Container ids from cgroup names, on the real kernel: processes moved into
cgroups named like the container runtimes name them (issue 5)."""

from __future__ import annotations

import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.process.containers import container_id_of_cgroup_file, container_id_of_path

pytestmark = pytest.mark.root

CGROUP_V2 = Path("/sys/fs/cgroup/unified")
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")
CID = secrets.token_hex(32)
POD = f"pod{uuid.uuid4()}"

# (relative cgroup path, expected container id)
LAYOUTS = [
    (f"system.slice/docker-{CID}.scope", CID),                  # docker, systemd driver
    (f"docker/{CID}", CID),                                     # docker, cgroupfs driver
    (f"system.slice/cri-containerd-{CID}.scope", CID),          # containerd CRI
    (f"machine.slice/crio-{CID}.scope", CID),                   # CRI-O
    (f"machine.slice/libpod-{CID}.scope", CID),                 # podman
    (f"kubepods/burstable/{POD}/{CID}", CID),                   # kubelet, cgroupfs driver
    (f"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-{POD.replace('-', '_')}.slice"
     + f"/cri-containerd-{CID}.scope", CID),                    # kubelet, systemd driver
    (f"docker/{CID}/system.slice/inner.service", CID),         # a cgroup the container made
    (f"machine.slice/crio-conmon-{CID}.scope", ""),            # the runtime's monitor
    (f"system.slice/docker-{CID[:32]}.scope", ""),             # not 64 hex digits
]


def _mkcgroup(root: Path, rel: str) -> Path:
    path = root / f"rsagent-test-{os.getpid()}" / rel
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rmcgroup(root: Path) -> None:
    top = root / f"rsagent-test-{os.getpid()}"
    if not top.exists():
        return
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
        os.rmdir(dirpath)


@pytest.fixture
def cgroups() -> Iterator[None]:
    yield
    for root in (CGROUP_V2, CGROUP_V1_CPU):
        _rmcgroup(root)


def _run_in(cgroup: Path, tag: str) -> int:
    """A shell that moves itself into `cgroup`, then forks and execs."""
    sh = subprocess.Popen(["sh", "-c", f"read x; /bin/true {tag}; :"], stdin=subprocess.PIPE, text=True)
    (cgroup / "cgroup.procs").write_text(f"{sh.pid}\n")
    assert sh.stdin is not None
    sh.stdin.write("go\n")
    sh.stdin.close()
    assert sh.wait() == 0
    return sh.pid


@pytest.mark.parametrize("rel, expected", LAYOUTS, ids=[r.split("/")[-1][:24] + f"-{i}" for i, (r, _) in enumerate(LAYOUTS)])
def test_container_id_from_a_v2_cgroup_name(tracer, cgroups: None, rel: str, expected: str) -> None:
    cgroup = _mkcgroup(CGROUP_V2, rel)
    tag = f"in-cgroup-{secrets.token_hex(4)}"
    with tracer.collect() as col:
        sh_pid = _run_in(cgroup, tag)
    execs = col.of_type("exec", lambda d: d["exec"]["argv"] == ["/bin/true", tag])
    assert len(execs) == 1
    proc = execs[0]["process"]
    assert proc["container"]["id"] == expected
    assert execs[0]["exec"]["container"]["id"] == expected
    assert proc["cgroup"]["id"] == str(cgroup.stat().st_ino)  # the v2 cgroup id is its kernfs inode
    # the fork inside the cgroup resolved the child's own cgroups
    forks = col.of_type("fork", lambda d: d["fork"]["parent_pid"] == sh_pid)
    assert forks and forks[0]["process"]["container"]["id"] == expected
    # the user-space twin (used for /proc snapshots) agrees
    assert container_id_of_path(str(cgroup.relative_to(CGROUP_V2))) == expected


def test_container_id_from_a_v1_hierarchy(tracer, cgroups: None) -> None:
    cgroup = _mkcgroup(CGROUP_V1_CPU, f"docker/{CID}")
    tag = f"in-v1-{secrets.token_hex(4)}"
    with tracer.collect() as col:
        _run_in(cgroup, tag)
    execs = col.of_type("exec", lambda d: d["exec"]["argv"] == ["/bin/true", tag])
    assert len(execs) == 1 and execs[0]["process"]["container"]["id"] == CID


def test_outside_containers_the_id_is_empty(tracer) -> None:
    with tracer.collect() as col:
        subprocess.run(["/bin/true", "host-process"], check=True)
    execs = col.of_type("exec", lambda d: d["exec"]["argv"] == ["/bin/true", "host-process"])
    assert execs and execs[0]["process"]["container"]["id"] == ""


def test_proc_cgroup_file_prefers_the_default_hierarchy() -> None:
    other = secrets.token_hex(32)
    text = (f"4:memory:/docker/{other}\n"
            f"0::/system.slice/docker-{CID}.scope\n"
            "1:cpu:/\n")
    assert container_id_of_cgroup_file(text) == CID
    assert container_id_of_cgroup_file("0::/user.slice/session-1.scope\n1:cpu:/\n") == ""
    assert container_id_of_cgroup_file(f"0::/\n5:pids:/docker/{other}\n") == other

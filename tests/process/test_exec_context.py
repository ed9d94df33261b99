"""What an exec event says about the new image besides its lineage:
credentials and capabilities, controlling tty, the overlayfs layer of the
executable (issue 5)."""

from __future__ import annotations

import os
import shutil
import sys
import subprocess
from pathlib import Path

import pytest
from proc_helpers import TRUE

pytestmark = pytest.mark.root



def _exec_with_argv(col, argv: list[str]) -> dict:
    execs = col.of_type("exec", lambda d: d["exec"]["argv"] == argv)
    assert len(execs) == 1, [d["exec"]["argv"] for d in col.of_type("exec")]
    return execs[0]


def test_credentials_and_capabilities_of_the_new_image(tracer) -> None:
    with tracer.collect() as col:
        subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                        TRUE, "as-nobody"], check=True)
        subprocess.run([TRUE, "as-root"], check=True)
    nobody = _exec_with_argv(col, [TRUE, "as-nobody"])
    for doc in (nobody["process"], nobody["exec"]):
        assert (doc["uid"], doc["gid"], doc["euid"], doc["egid"], doc["fsuid"], doc["fsgid"]) == (65534,) * 6
        assert doc["cap_effective"] == 0 and doc["cap_permitted"] == 0
        assert doc["user"] == "nobody"
    root = _exec_with_argv(col, [TRUE, "as-root"])["process"]
    assert root["uid"] == 0 and root["user"] == "root"
    assert root["cap_effective"] & (1 << 21)  # CAP_SYS_ADMIN
    # the ancestor shows the credentials its image ran with
    assert nobody["process"]["ancestors"][0]["uid"] == 0


def test_controlling_tty(tracer) -> None:
    master, slave = os.openpty()
    try:
        name = "pts" + os.ttyname(slave).rsplit("/", 1)[1]
        with tracer.collect() as col:
            subprocess.run(["setsid", "--ctty", "--wait", TRUE, "with-tty"], stdin=slave, stdout=slave,
                           stderr=slave, check=True)
            subprocess.run([TRUE, "without-tty"], stdin=subprocess.DEVNULL, check=True,
                           start_new_session=True)
    finally:
        os.close(slave)
        os.close(master)
    assert _exec_with_argv(col, [TRUE, "with-tty"])["process"]["tty_name"] == name
    assert _exec_with_argv(col, [TRUE, "without-tty"])["process"]["tty_name"] == ""


def test_executable_in_the_upper_layer_of_an_overlay(tracer, tmp_path: Path) -> None:
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    shutil.copy(TRUE, lower / "from-lower")
    subprocess.run(["mount", "-t", "overlay", "rsagent-ovl", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)], check=True)
    try:
        shutil.copy(TRUE, merged / "from-upper")  # written through the overlay: upper layer
        with tracer.collect() as col:
            subprocess.run([str(merged / "from-lower")], check=True)
            subprocess.run([str(merged / "from-upper")], check=True)
        lo = _exec_with_argv(col, [str(merged / "from-lower")])["exec"]["file"]
        up = _exec_with_argv(col, [str(merged / "from-upper")])["exec"]["file"]
        assert lo["filesystem"] == up["filesystem"] == "overlay"
        assert lo["in_upper_layer"] is False
        assert up["in_upper_layer"] is True
        assert lo["path"] == str(merged / "from-lower")
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_fileless_exec_from_a_memfd_and_exec_of_a_deleted_binary(tracer, tmp_path: Path) -> None:
    """memfd_create + execve("/proc/self/fd/N"): the kernel's name of the
    file (memfd:NAME), flagged; a binary deleted before it runs: its path,
    flagged deleted (the kernel's view, as /proc/PID/exe shows them)."""
    code = (
        "import os, sys\n"
        "fd = os.memfd_create('rs-payload', 0)\n"
        f"os.write(fd, open({TRUE!r}, 'rb').read())\n"
        "os.execve(f'/proc/self/fd/{fd}', ['payload', 'from-memfd'], {})\n"
    )
    doomed = tmp_path / "doomed"
    shutil.copy(TRUE, doomed)
    code2 = (
        "import os\n"
        f"fd = os.open({str(doomed)!r}, os.O_RDONLY)\n"
        f"os.unlink({str(doomed)!r})\n"
        "os.execve(f'/proc/self/fd/{fd}', ['doomed', 'deleted-before-exec'], {})\n"
    )
    with tracer.collect() as col:
        subprocess.run([sys.executable, "-c", code], check=True)
        subprocess.run([sys.executable, "-c", code2], check=True)
    memfd = _exec_with_argv(col, ["payload", "from-memfd"])
    for file in (memfd["exec"]["file"], memfd["process"]["file"]):
        assert file["path"] == "memfd:rs-payload" and file["name"] == "memfd:rs-payload"
        assert file["is_memfd"] is True and file["is_deleted"] is True
    deleted = _exec_with_argv(col, ["doomed", "deleted-before-exec"])["exec"]["file"]
    assert deleted["path"] == str(doomed) and deleted["is_deleted"] is True and deleted["is_memfd"] is False
    ok = _exec_with_argv(col, ["payload", "from-memfd"])["process"]["ancestors"][0]["file"]
    assert ok["is_memfd"] is False and ok["is_deleted"] is False


def test_login_uid_and_cgroup_of_the_new_image(tracer) -> None:
    """exec.auid from the task's loginuid, *.cgroup.id / cgroup.file.inode from its
    cgroup v2 directory; the parent (this test process, read from /proc at start)
    shows its own."""
    from agent.process.cgroups import cgroup2_mount

    root = cgroup2_mount()
    assert root is not None, "no cgroup2 mount on this host"
    mine = Path(f"/proc/{os.getpid()}/cgroup").read_text().split("0::", 1)[1].split("\n", 1)[0]
    my_ino = os.stat(root + mine).st_ino
    my_auid = int(Path("/proc/self/loginuid").read_text())
    group = Path(root) / f"rs-test-auid-{os.getpid()}"
    group.mkdir()

    def enter() -> None:  # in the child, before exec
        (group / "cgroup.procs").write_text(str(os.getpid()))
        Path("/proc/self/loginuid").write_text("4242")

    try:
        with tracer.collect() as col:
            subprocess.run([TRUE, "in-group"], preexec_fn=enter, check=True)
            subprocess.run([TRUE, "as-is"], check=True)
        ino = group.stat().st_ino
    finally:
        group.rmdir()
    moved = _exec_with_argv(col, [TRUE, "in-group"])
    for doc in (moved["process"], moved["exec"]):
        assert doc["auid"] == 4242
        assert doc["cgroup"] == {"id": str(ino), "file": {"inode": ino}}
    parent = moved["process"]["ancestors"][0]
    assert parent["pid"] == os.getpid()
    assert parent["auid"] == my_auid and parent["cgroup"]["id"] == str(my_ino) != str(ino)
    as_is = _exec_with_argv(col, [TRUE, "as-is"])["exec"]
    assert as_is["auid"] == my_auid and as_is["cgroup"]["file"]["inode"] == my_ino

"""The syscalls the kernel matrix performs under the agent, and what each
must produce.

One forked child does everything (a process of its own, so the agent's
self-filter stays on), through a symlinked directory so every reported
path must be the canonical one the kernel walked:

    <tmp>/real/          the directory
    <tmp>/lnk -> real    what the child uses
    <tmp>/real/fifo      made by the parent (the child's open of it fails)

Expectations are checked only for the event types the hook set produces;
the matrix (matrix.py) decides which types a kernel must have. The process
activity part (issue 9) is activity_workload.py.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import stat
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import activity_workload
import kernel_types

Doc = dict[str, Any]

O_CREAT = os.O_CREAT
ENXIO = 6
SETUID_MODE = 0o4755
CLOCK_SLACK_NS = 600 * 10**9
CHOWN_ID = 4242
MS_BIND = 4096
MNT_DETACH = 2
XATTR = "user.rsagent"


@dataclass(frozen=True)
class Check:
    name: str
    event_type: str
    ok: bool
    detail: str = ""


@dataclass
class Workload:
    """A prepared directory and the child that acts in it."""

    top: Path
    real: Path
    fifo_inode: int = 0
    child_pid: int = 0
    docs: list[Doc] = field(default_factory=list)
    alerts: list[Doc] = field(default_factory=list)

    @classmethod
    def prepare(cls) -> Workload:
        top = Path(tempfile.mkdtemp(prefix="rsk-", dir="/tmp")).resolve()
        real = top / "real"
        real.mkdir()
        (real / "mnt").mkdir()
        (top / "bind").mkdir()
        (top / "lnk").symlink_to("real")
        shutil.copy2("/bin/true", real / "true")
        os.mkfifo(real / "fifo")
        return cls(top=top, real=real, fifo_inode=os.stat(real / "fifo").st_ino)

    def cleanup(self) -> None:
        for leftover in ("bind", "real/mnt"):  # a child that failed half-way
            try:
                _umount(str(self.top / leftover), MNT_DETACH)
            except OSError:
                pass
        shutil.rmtree(self.top, ignore_errors=True)

    def run_child(self) -> int:
        """Fork the child; it acts, then execs <real>/true. Returns its pid."""
        pid = os.fork()
        if pid == 0:  # the child: plain syscalls only, then exec; exit 3 if any failed
            try:
                _act(self.top)
                # argv[0] like a kernel thread: the default policy's exec rule for this workload
                os.execv(str(self.top / "lnk" / "true"), ["[kworker/0:0]"])
            except OSError:
                pass
            os._exit(3)
        self.child_pid = pid
        return pid

    def wait(self) -> int:
        _, status = os.waitpid(self.child_pid, 0)
        return os.waitstatus_to_exitcode(status)

    # -- what came out -------------------------------------------------------
    def mine(self, event_type: str) -> list[Doc]:
        return [d for d in self.docs if d["type"] == event_type and d["process"]["pid"] == self.child_pid]

    def checks(self, types: set[str], *, precise: bool) -> list[Check]:
        out: list[Check] = []
        r = str(self.real)
        f, g, d = f"{r}/f", f"{r}/g", f"{r}/d"

        def one(name: str, event_type: str, pred: Any, what: str) -> None:
            if event_type not in types:
                return
            docs = self.mine(event_type)
            hits = [x for x in docs if pred(x)]
            seen = sorted({_path(x, event_type) for x in docs})
            out.append(Check(name, event_type, bool(hits), f"expected {what}; {event_type} paths seen: {seen}"))

        one("open creates via a symlinked dir", "open",
            lambda x: x["open"]["file"]["path"] == f and x["open"]["flags"] & O_CREAT and x["open"]["retval"] >= 0
            and x["open"]["file"]["inode"] > 0, f"path {f}, O_CREAT, retval >= 0, an inode")
        cap_eff = _cap_effective()
        now = time.time_ns()
        one("open: inode attributes and credentials (CO-RE reads)", "open",
            lambda x: x["open"]["file"]["path"] == f and x["open"]["file"]["mode"] == stat.S_IFREG | 0o644
            and x["open"]["file"]["uid"] == os.getuid()
            and abs(x["open"]["file"]["change_time"] - now) < CLOCK_SLACK_NS
            and abs(x["open"]["file"]["modification_time"] - now) < CLOCK_SLACK_NS
            and x["process"]["cap_effective"] == cap_eff,
            f"path {f}, mode {stat.S_IFREG | 0o644:o}, uid {os.getuid()}, change/modification time within "
            f"{CLOCK_SLACK_NS // 10**9} s of now, process.cap_effective {cap_eff:#x} (/proc/self/status)")
        one("open of a credential file", "open",
            lambda x: x["open"]["file"]["path"] == "/etc/shadow" and x["open"]["retval"] >= 0, "path /etc/shadow")
        fifo = f"{r}/fifo"
        if precise:
            one("failed open names the object (vfs_open)", "open",
                lambda x: x["open"]["file"]["path"] == fifo and x["open"]["retval"] == -ENXIO
                and x["open"]["file"].get("inode") == self.fifo_inode
                and stat.S_ISFIFO(x["open"]["file"].get("mode", 0)),
                f"path {fifo}, retval -ENXIO, inode {self.fifo_inode}, a FIFO's mode")
        else:
            one("failed open resolved from the caller's string", "open",
                lambda x: x["open"]["file"]["path"] == fifo and x["open"]["retval"] == -ENXIO,
                f"path {fifo}, retval -ENXIO")
        one("chmod setuid", "chmod",
            lambda x: x["chmod"]["file"]["path"] == f and x["chmod"]["retval"] == 0
            and x["chmod"]["file"]["destination"]["mode"] == SETUID_MODE
            and x["chmod"]["file"].get("inode", 0) > 0,
            f"path {f}, destination mode {SETUID_MODE:o}, retval 0")
        one("chown", "chown",
            lambda x: x["chown"]["file"]["path"] == f and x["chown"]["retval"] == 0
            and x["chown"]["file"]["destination"]["uid"] == CHOWN_ID,
            f"path {f}, destination uid {CHOWN_ID}, retval 0")
        one("utimes", "utimes",
            lambda x: x["utimes"]["file"]["path"] == f and x["utimes"]["retval"] == 0, f"path {f}, retval 0")
        for xtype in ("setxattr", "removexattr"):
            one(xtype, xtype,
                lambda x, t=xtype: x[t]["file"]["path"] == f and x[t]["file"]["destination"]["name"] == XATTR,
                f"path {f}, destination name {XATTR} (any retval: filesystem support varies)")
        one("link", "link",
            lambda x: x["link"]["file"]["path"] == f and x["link"]["retval"] == 0
            and x["link"]["file"]["destination"]["path"] == f"{r}/h",
            f"path {f} -> {r}/h, retval 0")
        one("rename", "rename",
            lambda x: x["rename"]["file"]["path"] == f and x["rename"]["retval"] == 0
            and x["rename"]["file"]["destination"]["path"] == g,
            f"path {f} -> {g}, retval 0")
        one("unlink", "unlink",
            lambda x: x["unlink"]["file"]["path"] == g and x["unlink"]["retval"] == 0, f"path {g}, retval 0")
        one("mkdir", "mkdir",
            lambda x: x["mkdir"]["file"]["path"] == d and x["mkdir"]["retval"] == 0, f"path {d}, retval 0")
        one("rmdir", "rmdir",
            lambda x: x["rmdir"]["file"]["path"] == d and x["rmdir"]["retval"] == 0, f"path {d}, retval 0")
        point = f"{r}/mnt"
        one("mount of a tmpfs", "mount",
            lambda x: x["mount"]["mountpoint"]["path"] == point and x["mount"]["retval"] == 0
            and x["mount"]["fs_type"] == "tmpfs" and x["mount"]["mount_id"] > 0,
            f"mount point {point}, fs_type tmpfs, a mount id")
        one("umount", "umount",
            lambda x: x["umount"]["mountpoint"]["path"] == point and x["umount"]["retval"] == 0, f"mount point {point}")
        if precise:
            # The tracepoint set learns only the inode and places it on a
            # mount from the agent's table, which a bind mount made and
            # removed between two refreshes never enters: real/f there.
            bound = f"{self.top}/bind/f"
            one("chmod through a short-lived bind mount names that mount", "chmod",
                lambda x: x["chmod"]["file"]["path"] == bound and x["chmod"]["retval"] == 0
                and x["chmod"]["file"]["path_source"] == "kernel",
                f"path {bound}, path_source kernel (the mount security_path_chmod got)")
        one("exec from the temporary directory", "exec",
            lambda x: x["exec"]["file"]["path"] == f"{r}/true", f"path {r}/true")
        if "fork" in types:
            forks = [x for x in self.docs if x["type"] == "fork" and x["process"]["pid"] == self.child_pid]
            out.append(Check("fork of the child", "fork", bool(forks), f"a fork document for pid {self.child_pid}"))
        one("exit of the child", "exit", lambda x: True, f"an exit document for pid {self.child_pid}")

        def one_of(name: str, event_type: str, docs: list[Doc], pred: Any, what: str) -> None:
            if event_type in types:
                hits = [x for x in docs if pred(x)]
                out.append(Check(name, event_type, bool(hits), f"expected {what}; {len(docs)} {event_type} documents"))

        activity_workload.checks(self.top, self.docs, types, one_of, precise=precise)
        # bpf, mmap, mprotect, io_uring, the new mount API, modules (kernel_types.py)
        out += [Check(*c) for c in kernel_types.checks(self.mine, self.docs, self.top, types, precise=precise)]
        lo = {"ip": "127.0.0.1", "family": 2, "is_public": False}
        one("bind on loopback (the port the kernel picked)", "bind",
            lambda x: {k: x["bind"]["addr"][k] for k in lo} == lo and x["bind"]["addr"]["port"] > 0
            and x["bind"]["retval"] == 0 and x["bind"]["protocol"] == 6, "addr 127.0.0.1:<port>, TCP, retval 0")
        one("connect to it", "connect",
            lambda x: {k: x["connect"]["addr"][k] for k in lo} == lo and x["connect"]["retval"] == 0
            and x["connect"]["protocol"] == 6, "addr 127.0.0.1, TCP, retval 0")
        one("accept of the connection", "accept",
            lambda x: x["accept"]["addr"]["ip"] == "127.0.0.1" and x["accept"]["retval"] >= 0,
            "addr.ip 127.0.0.1, a descriptor")
        one("DNS query on loopback (tc classifier)", "dns",
            lambda x: x["dns"]["question"]["name"] == DNS_NAME and x["dns"]["question"]["type"] == 1
            and x["dns"]["id"] == 0x6D61 and x["dns"]["attribution"] == "sending_task"
            and x["network"]["device"]["ifname"] == "lo", f"name {DNS_NAME}, type A, sent by the child, on lo")
        return out

    def alert_checks(self, types: set[str]) -> list[Check]:
        """Default-policy rules the workload must trigger."""
        wanted = {"credential_file_read": "open", "kernel_thread_masquerade": "exec",
                  "setuid_bit_set": "chmod"}
        fired = {a["rule_id"] for a in self.alerts if a["event"]["process"]["pid"] == self.child_pid}
        return [Check(f"alert {rule}", event_type, rule in fired, f"fired: {sorted(fired)}")
                for rule, event_type in wanted.items() if event_type in types]


def _act(top: Path) -> None:
    """The child's syscalls, all through the symlinked directory."""
    os.chdir(top)
    os.umask(0o022)
    fd = os.open("lnk/f", os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    fd = os.open("/etc/shadow", os.O_RDONLY)
    os.close(fd)
    try:  # a FIFO opened for writing without a reader: ENXIO inside vfs_open
        os.close(os.open("lnk/fifo", os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass
    os.chmod("lnk/f", SETUID_MODE)
    os.chown("lnk/f", CHOWN_ID, CHOWN_ID)
    os.utime("lnk/f", (1, 1))
    try:  # user.* xattrs need filesystem support (tmpfs: 6.6+); a refusal still names the file
        os.setxattr("lnk/f", XATTR, b"1")
    except OSError:
        pass
    try:
        os.removexattr("lnk/f", XATTR)
    except OSError:
        pass
    os.link("lnk/f", "lnk/h")
    os.unlink("lnk/h")
    _mount(b"tmpfs", "lnk/mnt", b"tmpfs", 0)          # mount/umount: the new mount named in the kernel
    _umount("lnk/mnt")
    _mount(b"real", "bind", None, MS_BIND)            # the same directory through a second mount
    try:
        os.chmod("bind/f", SETUID_MODE)
    finally:
        _umount("bind")
    os.rename("lnk/f", "lnk/g")
    os.unlink("lnk/g")
    os.mkdir("lnk/d")
    os.rmdir("lnk/d")
    activity_workload.act(top)   # ptrace, signal, credentials, memfd, splice, prctl, chdir, namespaces
    kernel_types.act(top)                             # bpf, memory, io_uring, mount API, modules
    _network()


DNS_NAME = "matrix.rsagent.example"


def _network() -> None:
    """bind, connect, accept on loopback, and a DNS query to 127.0.0.1:53
    (nobody answers: the query leaving lo is what the classifier sees)."""
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        with socket.create_connection(ls.getsockname()):
            conn, _ = ls.accept()
            conn.close()
    qname = b"".join(bytes([len(label)]) + label for label in DNS_NAME.encode().split(b".")) + b"\0"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(struct.pack("!HHHHHH", 0x6D61, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1),
                 ("127.0.0.1", 53))


_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: bytes, target: str, fstype: bytes | None, flags: int) -> None:
    if _libc.mount(source, target.encode(), fstype, ctypes.c_ulong(flags), None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _umount(target: str, flags: int = 0) -> None:
    if _libc.umount2(target.encode(), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def _cap_effective() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise RuntimeError("/proc/self/status has no CapEff line")


def _path(doc: Doc, event_type: str) -> str:
    body = doc.get(event_type, {})
    if event_type == "dns":
        return str(body.get("question", {}).get("name", ""))
    if "addr" in body:
        return f"{body['addr'].get('ip', '')}:{body['addr'].get('port', '')}"
    return str(body.get("file", {}).get("path", ""))


def shape(doc: Any, prefix: str = "") -> set[str]:
    """The dotted key paths of a document (list items merged)."""
    keys: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            keys.add(p)
            keys |= shape(v, p)
    elif isinstance(doc, list):
        for item in doc:
            keys |= shape(item, prefix + "[]")
    return keys

"""A network lab made by the test, removed after it: two network
namespaces joined by a veth pair (IPv4 and IPv6), a real DNS server
(dnsmasq, from Debian's dnsmasq-base) on the server's veth address, and a
resolv.conf for the client namespace (``ip netns exec`` mounts
/etc/netns/<ns>/resolv.conf over /etc/resolv.conf). Built with iproute2's
``ip``; the agent under test uses netlink through pyroute2 on its own.

Names carry the test process's pid so a crashed run's leftovers never
collide with the next one's.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CLIENT = Path(__file__).resolve().parent / "client.py"
EVIL = "evil.example"
EVIL_V4 = "10.1.2.3"
EVIL_V6 = "fd00:e::1"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def dns_query(name: str, qtype: int = 1, qid: int = 0x1234) -> bytes:
    """A standard query (RD set) for ``name``."""
    wire = b"".join(bytes([len(label)]) + label for label in name.encode().split(b".") if label) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", qtype, 1)


@dataclass
class Lab:
    tag: str = field(default_factory=lambda: f"{os.getpid() % 100000}")
    subnet: int = field(default_factory=lambda: 20 + os.getpid() % 200)
    dnsmasq: subprocess.Popen[bytes] | None = None
    extra_links: list[str] = field(default_factory=list)

    # -- names -----------------------------------------------------------------------
    @property
    def server_ns(self) -> str:
        return f"rsn-s{self.tag}"

    @property
    def client_ns(self) -> str:
        return f"rsn-c{self.tag}"

    @property
    def server_if(self) -> str:
        return f"rsv{self.tag}s"

    @property
    def client_if(self) -> str:
        return f"rsv{self.tag}c"

    @property
    def server_ip(self) -> str:
        return f"10.77.{self.subnet}.1"

    @property
    def client_ip(self) -> str:
        return f"10.77.{self.subnet}.2"

    @property
    def server_ip6(self) -> str:
        return f"fd00:77:{self.subnet:x}::1"

    @property
    def client_ip6(self) -> str:
        return f"fd00:77:{self.subnet:x}::2"

    @property
    def pid_file(self) -> Path:
        return Path(f"/tmp/rsagent-dnsmasq-{self.tag}.pid")

    @property
    def resolv_dir(self) -> Path:
        return Path("/etc/netns") / self.client_ns

    # -- life cycle ----------------------------------------------------------------------
    def up(self) -> Lab:
        self.down()
        s, c = self.server_ns, self.client_ns
        sh("ip", "netns", "add", s)
        sh("ip", "netns", "add", c)
        sh("ip", "link", "add", self.server_if, "type", "veth", "peer", "name", self.client_if)
        sh("ip", "link", "set", self.server_if, "netns", s)
        sh("ip", "link", "set", self.client_if, "netns", c)
        for ns, ifname, ip, ip6 in ((s, self.server_if, self.server_ip, self.server_ip6),
                                    (c, self.client_if, self.client_ip, self.client_ip6)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", ifname)
            sh("ip", "-n", ns, "-6", "addr", "add", f"{ip6}/64", "dev", ifname, "nodad")
            sh("ip", "-n", ns, "link", "set", ifname, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.resolv_dir.mkdir(parents=True, exist_ok=True)
        (self.resolv_dir / "resolv.conf").write_text(
            f"nameserver {self.server_ip}\noptions timeout:2 attempts:2\n")
        return self

    def start_dns(self) -> None:
        """dnsmasq on the server's addresses: evil.example has an A and an
        AAAA record, anything else is NXDOMAIN (no upstream)."""
        exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        self.dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", self.server_ns, exe, "--keep-in-foreground", "--conf-file=/dev/null",
             "--no-resolv", "--no-hosts", "--bind-interfaces", f"--listen-address={self.server_ip}",
             f"--listen-address={self.server_ip6}", f"--address=/{EVIL}/{EVIL_V4}",
             f"--address=/{EVIL}/{EVIL_V6}", f"--pid-file={self.pid_file}", "--log-facility=-",
             "--cache-size=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            if self.dnsmasq.poll() is not None:
                raise RuntimeError(f"dnsmasq exited {self.dnsmasq.returncode}")
            if self.client("query", self.server_ip, "ready.example", check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("dnsmasq did not answer within 15 s")
            time.sleep(0.2)

    def down(self) -> None:
        if self.dnsmasq is not None:
            self.dnsmasq.terminate()
            try:
                self.dnsmasq.wait(10)
            except subprocess.TimeoutExpired:
                self.dnsmasq.kill()
                self.dnsmasq.wait(10)
            self.dnsmasq = None
        for ns in (self.server_ns, self.client_ns):
            sh("ip", "netns", "del", ns, check=False)
        for link in self.extra_links:
            sh("ip", "link", "del", link, check=False)
        self.extra_links.clear()
        shutil.rmtree(self.resolv_dir, ignore_errors=True)
        self.pid_file.unlink(missing_ok=True)

    # -- acting in the namespaces ------------------------------------------------------------
    def exec_in(self, ns: str, *args: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *args]

    def client(self, *args: str, check: bool = True, ns: str | None = None) -> subprocess.CompletedProcess[str]:
        """tests/net/client.py in the client namespace (its pid is printed first)."""
        proc = subprocess.run(self.exec_in(ns or self.client_ns, sys.executable, str(CLIENT), *args),
                              capture_output=True, text=True, timeout=60)
        if check and proc.returncode:
            raise RuntimeError(f"client {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def spawn(self, ns: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.exec_in(ns, sys.executable, str(CLIENT), *args), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # -- what is on the interfaces ----------------------------------------------------------
    def filters(self, ns: str) -> dict[str, str]:
        """ifname -> `tc filter show ... egress` output, for every interface of ns."""
        out = {}
        for ifname in self.links(ns):
            text = sh("ip", "netns", "exec", ns, "tc", "filter", "show", "dev", ifname, "egress",
                      check=False).stdout
            out[ifname] = text
        return out

    def ours(self, ns: str) -> dict[str, list[str]]:
        """Filters named rsagent:* per interface."""
        return {ifname: [ln for ln in text.splitlines() if "rsagent:" in ln]
                for ifname, text in self.filters(ns).items() if "rsagent:" in text}

    def clsact(self, ns: str) -> list[str]:
        text = sh("ip", "netns", "exec", ns, "tc", "qdisc", "show").stdout
        return [ln for ln in text.splitlines() if "clsact" in ln]

    def links(self, ns: str) -> list[str]:
        text = sh("ip", "-n", ns, "-o", "link", "show").stdout
        return [ln.split(":")[1].strip().split("@")[0] for ln in text.splitlines() if ":" in ln]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def dns_lab() -> Iterator[Lab]:
    """A Lab up, with its DNS server started; down again on exit."""
    lab = Lab().up()
    try:
        lab.start_dns()
        yield lab
    finally:
        lab.down()

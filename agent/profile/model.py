"""An activity profile: what a workload did while it was learned, as readable YAML.

    kind: rsagent-profile
    version: 1
    selector: {exe: /opt/shop/bin/shop-server}     # or {container: ID}, {cgroup: PATH, cgroup_id: "N"}
    learned: {source: live, started: ..., ended: ..., events: 1234}
    processes:                                     # the process tree of executables
      - path: /opt/shop/bin/shop-server
        parents: [/usr/bin/bash]
        args: ["--config /etc/shop.conf"]        # argument shapes: literal, or a pattern with *
    files:                                         # by directory pattern (`dir/*`, `dir/**`)
      read: [/etc/shop.conf, /usr/lib/python3.11/**]
      write: [/var/log/shop/*]
    dns: [db.shop.internal]                        # names, or patterns `*.shop.internal`
    connect:                                       # destinations: ip or CIDR, and port
      - {addr: 10.0.0.0/24, port: 5432}
    event_types: [connect, dns, exec, exit, fork, open]

Reading reports every problem as ``file:line:col`` (codegen's positioned
YAML); writing creates the file 0600, never through a symlink.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from codegen.errors import Diagnostics
from codegen.yamlpos import YNode, load, read_file

KIND = "rsagent-profile"
VERSION = 1
SELECTOR_KINDS = ("exe", "container", "cgroup")


class ProfileError(ValueError):
    """A profile that cannot be read; the message has every problem, file:line:col first."""


@dataclass(frozen=True)
class Selector:
    """Which processes a profile is about: ``kind`` one of :data:`SELECTOR_KINDS`."""

    kind: str
    value: str
    cgroup_id: str = ""   # cgroup: the v2 cgroup id of the directory (what events carry)

    def as_dict(self) -> dict[str, str]:
        out = {self.kind: self.value}
        if self.kind == "cgroup":
            out["cgroup_id"] = self.cgroup_id
        return out

    def describe(self) -> str:
        return f"{self.kind} {self.value}"


@dataclass
class ProcessEntry:
    path: str
    parents: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)   # shapes: a literal, or a pattern when it holds `*`


@dataclass
class Destination:
    addr: str        # an IP address or a CIDR
    port: int

    def covers(self, ip: str, port: int) -> bool:
        if port != self.port:
            return False
        try:
            return ipaddress.ip_address(ip) in ipaddress.ip_network(self.addr, strict=False)
        except ValueError:
            return False

    def key(self) -> str:
        return f"{self.addr}:{self.port}"


@dataclass
class Profile:
    selector: Selector
    learned: dict[str, Any] = field(default_factory=dict)
    processes: list[ProcessEntry] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    files_write: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    connect: list[Destination] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND, "version": VERSION, "selector": self.selector.as_dict(), "learned": dict(self.learned),
            "processes": [{"path": p.path, "parents": list(p.parents), "args": list(p.args)} for p in self.processes],
            "files": {"read": list(self.files_read), "write": list(self.files_write)},
            "dns": list(self.dns),
            "connect": [{"addr": d.addr, "port": d.port} for d in self.connect],
            "event_types": list(self.event_types),
        }

    def to_yaml(self) -> str:
        head = (f"# rsagent activity profile of {self.selector.describe()} (rsagent profile learn);\n"
                "# edit freely: `rulec validate` checks it when a policy references it\n")
        return head + yaml.safe_dump(self.as_dict(), sort_keys=False, default_flow_style=False, width=100)

    def process(self, path: str) -> ProcessEntry | None:
        return next((p for p in self.processes if p.path == path), None)


def write_profile(profile: Profile, path: Path) -> None:
    """Write ``profile`` to ``path``: created 0600, never through a symlink."""
    from agent.safefile import open_truncate

    with open(open_truncate(path), "w", encoding="utf-8") as out:
        out.write(profile.to_yaml())


def read_profile(path: str | Path, diags: Diagnostics | None = None) -> Profile | None:
    """The profile at ``path``; problems go to ``diags`` (file:line:col), None when it cannot be used.
    Without ``diags``, a problem raises :class:`ProfileError`."""
    own = Diagnostics() if diags is None else diags
    before = own.error_count
    text = read_file(path, own, what="profile")
    profile = None if text is None else parse_profile(text, str(path), own)
    if diags is None and (profile is None or own.error_count > before):
        raise ProfileError("\n".join(d.format() for d in own.sorted() if d.is_error))
    return profile if own.error_count == before else None


class _Checker:
    def __init__(self, diags: Diagnostics) -> None:
        self.diags = diags

    def error(self, node: YNode, message: str) -> None:
        lines = node.file.lines
        src = lines[node.line - 1] if 0 < node.line <= len(lines) else ""
        self.diags.error_at(node.file.path, node.line, node.col, message, src)

    def strings(self, node: YNode | None, what: str, allow_empty: bool = False) -> list[str]:
        if node is None or node.value is None:
            return []
        if not node.is_sequence:
            self.error(node, f"'{what}' must be a list of strings")
            return []
        out = []
        for item in node.value:
            if isinstance(item.value, str) and (item.value or allow_empty):
                out.append(item.value)
            else:
                self.error(item, f"'{what}': expected a non-empty string, got {item.value!r}")
        return out


def parse_profile(text: str, path: str, diags: Diagnostics) -> Profile | None:
    root = load(text, path, diags)
    if root is None:
        return None
    check = _Checker(diags)
    before = diags.error_count
    if not root.is_mapping:
        check.error(root, f"a profile is a mapping with 'kind: {KIND}' and 'version: {VERSION}'")
        return None
    kind = root.get("kind")
    if kind is None or kind.value != KIND:
        check.error(kind or root, f"not an rsagent profile: expected 'kind: {KIND}'")
        return None
    version = root.get("version")
    if version is None:
        check.error(root, f"profile without a 'version' (this rsagent reads version {VERSION})")
        return None
    if version.value != VERSION:
        check.error(version, f"profile format version {version.value!r}; this rsagent reads version {VERSION} "
                             "(learn it again with `rsagent profile learn`)")
        return None
    selector = _selector(root.get("selector"), root, check)
    processes = []
    procs = root.get("processes")
    if procs is not None and procs.value is not None:
        if not procs.is_sequence:
            check.error(procs, "'processes' must be a list")
        else:
            for item in procs.value:
                p = item.get("path") if item.is_mapping else None
                if p is None or not isinstance(p.value, str) or not p.value.startswith("/"):
                    check.error(item, "a process needs 'path', an absolute path")
                    continue
                processes.append(ProcessEntry(p.value, check.strings(item.get("parents"), "parents"),
                                              check.strings(item.get("args"), "args", allow_empty=True)))
    files = root.get("files")
    read: list[str] = []
    write: list[str] = []
    if files is not None and files.value is not None:
        if not files.is_mapping:
            check.error(files, "'files' must be a mapping with 'read' and 'write' lists")
        else:
            read = check.strings(files.get("read"), "files.read")
            write = check.strings(files.get("write"), "files.write")
            for node in (files.get("read"), files.get("write")):
                for item in node.value if node is not None and node.is_sequence else ():
                    if isinstance(item.value, str) and not item.value.startswith("/"):
                        check.error(item, f"file pattern {item.value!r} is not an absolute path")
    dests = []
    conn = root.get("connect")
    if conn is not None and conn.value is not None:
        if not conn.is_sequence:
            check.error(conn, "'connect' must be a list of {addr, port}")
        else:
            for item in conn.value:
                dest = _destination(item, check)
                if dest is not None:
                    dests.append(dest)
    learned = root.get("learned")
    profile = Profile(
        selector=selector or Selector("exe", "/"),
        learned=learned.plain() if learned is not None and learned.is_mapping else {},
        processes=processes, files_read=read, files_write=write,
        dns=check.strings(root.get("dns"), "dns"), connect=dests,
        event_types=check.strings(root.get("event_types"), "event_types"))
    return profile if diags.error_count == before and selector is not None else None


def _selector(node: YNode | None, root: YNode, check: _Checker) -> Selector | None:
    if node is None or not node.is_mapping:
        check.error(node or root, f"'selector' must be a mapping with one of: {', '.join(SELECTOR_KINDS)}")
        return None
    kinds = [k for k in SELECTOR_KINDS if k in node.value]
    if len(kinds) != 1:
        check.error(node, f"'selector' needs exactly one of: {', '.join(SELECTOR_KINDS)}")
        return None
    value = node.value[kinds[0]]
    if not isinstance(value.value, str) or not value.value:
        check.error(value, f"selector {kinds[0]}: expected a non-empty string")
        return None
    cgroup_id = ""
    if kinds[0] == "cgroup":
        cid = node.get("cgroup_id")
        if cid is None or not str(cid.value).isdigit():
            check.error(cid or node, "selector cgroup: needs 'cgroup_id', the cgroup's v2 id (a number)")
            return None
        cgroup_id = str(cid.value)
    return Selector(kinds[0], value.value, cgroup_id)


def _destination(item: YNode, check: _Checker) -> Destination | None:
    addr = item.get("addr") if item.is_mapping else None
    port = item.get("port") if item.is_mapping else None
    if addr is None or port is None:
        check.error(item, "a connect destination is {addr: IP or CIDR, port: N}")
        return None
    try:
        ipaddress.ip_network(str(addr.value), strict=False)
    except ValueError:
        check.error(addr, f"invalid address {addr.value!r}: an IP address or a CIDR")
        return None
    if not isinstance(port.value, int) or isinstance(port.value, bool) or not 0 <= port.value <= 65535:
        check.error(port, f"invalid port {port.value!r}: 0..65535")
        return None
    return Destination(str(addr.value), port.value)

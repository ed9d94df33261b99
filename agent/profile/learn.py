"""Learning a profile from resolved event documents (live or from a capture).

One :class:`Learner` takes the documents the rule engine sees — from a
running probe set (`rsagent profile learn --exe ...`) or from a capture
(`--from-capture`, agent/capture.py's reader) — keeps those of the
selected workload, and generalises what it saw when the profile is made:

- file paths: a numeric path segment (``/proc/1234``) becomes ``*``; more
  than :data:`FILES_PER_DIR` files in one directory become ``dir/*`` (not in
  a top-level directory: ``/etc/*`` would cover ``/etc/shadow``); a
  directory with entries in more than :data:`DIRS_PER_TREE` subdirectories
  becomes ``dir/**`` (never above the second level: no ``/usr/**``);
- argument shapes: up to :data:`ARGS_PER_EXE` distinct argument strings are
  kept literally, more become one pattern (tokens that differ become ``*``);
- DNS names: more than :data:`NAMES_PER_DOMAIN` names under one parent
  domain become ``*.parent``;
- connect destinations: more than :data:`ADDRS_PER_NET` IPv4 addresses of
  one /24 on one port become the /24.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.evaluator.event import materialize
from agent.process.cgroups import cgroup2_mount

from .model import Destination, ProcessEntry, Profile, Selector

FILES_PER_DIR = 4
DIRS_PER_TREE = 4
MIN_TREE_DEPTH = 2        # dir/** only for directories at least this deep (/usr/lib/x, not /usr)
ARGS_PER_EXE = 4
NAMES_PER_DOMAIN = 4
ADDRS_PER_NET = 4
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC   # an open that may change the file


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _exe(proc: dict[str, Any]) -> str:
    path = _d(proc.get("file")).get("path")
    return path if isinstance(path, str) else ""


def in_scope(selector: Selector, doc: dict[str, Any]) -> bool:
    """Whether the event's process belongs to the workload ``selector`` names
    (the same test as the generated rules' scope, agent/profile/rules.py)."""
    proc = _d(doc.get("process"))
    if selector.kind == "exe":
        if _exe(proc) == selector.value:
            return True
        ancestors = proc.get("ancestors")
        return isinstance(ancestors, list) and any(_exe(_d(a)) == selector.value for a in ancestors)
    if selector.kind == "container":
        return _d(proc.get("container")).get("id") == selector.value
    return str(_d(proc.get("cgroup")).get("id", "")) == selector.cgroup_id


def cgroup_selector(path: str, root: str | None = None) -> Selector:
    """``--cgroup PATH``: a cgroup v2 directory, absolute or relative to the
    cgroup2 mount (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid
    host); events carry its id, the directory's inode number."""
    root = root if root is not None else cgroup2_mount()
    if root is None:
        raise ValueError(f"--cgroup {path}: no cgroup v2 hierarchy is mounted (no cgroup2 in /proc/self/mounts)")
    root = root.rstrip("/") or "/"
    inside = path == root or path.startswith(root + "/")
    full = path if inside else root + "/" + path.lstrip("/")
    try:
        st = os.stat(full)
    except OSError as exc:
        raise ValueError(f"--cgroup {path}: cannot stat {full}: {exc.strerror or exc} "
                         f"(give a directory of the cgroup v2 hierarchy mounted at {root})") from None
    return Selector("cgroup", path, str(st.st_ino))


@dataclass
class Learner:
    selector: Selector
    events: int = 0            # documents of the workload
    seen: int = 0              # documents read
    started: int = field(default_factory=time.time_ns)
    first: int | None = None
    last: int | None = None
    processes: dict[str, dict[str, set[str]]] = field(default_factory=dict)   # exe -> parents, args
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    dests: set[tuple[str, int]] = field(default_factory=set)
    types: set[str] = field(default_factory=set)

    def add(self, doc: dict[str, Any]) -> None:
        self.seen += 1
        materialize(doc)
        if not in_scope(self.selector, doc):
            return
        self.events += 1
        kind = str(doc.get("type", ""))
        self.types.add(kind)
        ts = doc.get("timestamp")
        if isinstance(ts, int):
            self.first = ts if self.first is None else self.first
            self.last = ts
        proc = _d(doc.get("process"))
        self._process(proc)
        body = _d(doc.get(kind))
        if kind == "open":
            path = _d(body.get("file")).get("path")
            if isinstance(path, str) and path:
                flags = body.get("flags", 0)
                (self.writes if isinstance(flags, int) and flags & WRITE_FLAGS else self.reads).add(path)
        elif kind == "dns":
            name = _d(body.get("question")).get("name")
            if isinstance(name, str) and name:
                self.names.add(name)
        elif kind == "connect":
            addr = _d(body.get("addr"))
            ip, port = addr.get("ip"), addr.get("port")
            if isinstance(ip, str) and ip and isinstance(port, int):
                self.dests.add((ip, port))

    def _process(self, proc: dict[str, Any]) -> None:
        exe = _exe(proc)
        if not exe:
            return
        entry = self.processes.setdefault(exe, {"parents": set(), "args": set()})
        ancestors = proc.get("ancestors")
        if isinstance(ancestors, list) and ancestors:
            parent = _exe(_d(ancestors[0]))
            if parent:
                entry["parents"].add(parent)
        argv = proc.get("argv")
        if isinstance(argv, list):
            entry["args"].add(" ".join(str(a) for a in argv[1:]))

    def profile(self, source: str) -> Profile:
        return Profile(
            selector=self.selector,
            learned={"source": source, "started": _iso(self.first or self.started),
                     "ended": _iso(self.last or time.time_ns()), "events": self.events,
                     "hostname": os.uname().nodename},
            processes=[ProcessEntry(exe, sorted(v["parents"]), arg_shapes(v["args"]))
                       for exe, v in sorted(self.processes.items())],
            files_read=path_patterns(self.reads), files_write=path_patterns(self.writes),
            dns=name_patterns(self.names), connect=destinations(self.dests),
            event_types=sorted(self.types))


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9))


def _segments(path: str) -> list[str]:
    return ["*" if s.isdigit() else s for s in path.split("/")[1:]]


def path_patterns(paths: Iterable[str]) -> list[str]:
    """Absolute paths as globs (see the module docstring)."""
    by_dir: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        segs = _segments(path)
        if not segs:
            continue
        by_dir["/" + "/".join(segs[:-1])].add(segs[-1])
    # a top-level directory (/etc, /tmp, /root) is never collapsed: /etc/* would take /etc/shadow in
    files: dict[str, set[str]] = {d: ({"*"} if len(names) > FILES_PER_DIR and d.count("/") >= MIN_TREE_DEPTH else names)
                                  for d, names in by_dir.items()}
    # subtrees: a directory with entries in many subdirectories becomes dir/**
    trees: set[str] = set()
    children: dict[str, set[str]] = defaultdict(set)
    for d in files:
        parts = d.strip("/").split("/") if d != "/" else []
        for depth in range(MIN_TREE_DEPTH, len(parts)):
            children["/" + "/".join(parts[:depth])].add(parts[depth])
    for d, subs in children.items():
        if len(subs) > DIRS_PER_TREE:
            trees.add(d)
    # keep only the outermost trees
    trees = {t for t in trees if not any(t != o and t.startswith(o + "/") for o in trees)}
    out: set[str] = {t + "/**" for t in trees}
    for d, names in files.items():
        if any(d == t or d.startswith(t + "/") for t in trees):
            continue
        base = d.rstrip("/")
        out.update(f"{base}/{n}" for n in names)
    return sorted(out)


def arg_shapes(args: Iterable[str]) -> list[str]:
    distinct = sorted(set(args))
    if len(distinct) <= ARGS_PER_EXE:
        return distinct
    tokens = [a.split(" ") for a in distinct]
    if len({len(t) for t in tokens}) == 1:
        shape = [col[0] if len(set(col)) == 1 else "*" for col in zip(*tokens, strict=True)]
        return [" ".join(shape)]
    prefix: list[str] = []
    for col in zip(*tokens, strict=False):
        if len(set(col)) != 1:
            break
        prefix.append(col[0])
    return [" ".join(prefix + ["*"])]


def name_patterns(names: Iterable[str]) -> list[str]:
    by_parent: dict[str, set[str]] = defaultdict(set)
    for name in names:
        labels = name.split(".")
        by_parent[".".join(labels[1:]) if len(labels) > 2 else ""].add(name)
    out: set[str] = set()
    for parent, group in by_parent.items():
        if parent and len(group) > NAMES_PER_DOMAIN:
            out.add("*." + parent)
        else:
            out.update(group)
    return sorted(out)


def destinations(dests: Iterable[tuple[str, int]]) -> list[Destination]:
    by_net: dict[tuple[str, int], set[str]] = defaultdict(set)
    out: list[Destination] = []
    for ip, port in dests:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            continue
        if addr.version == 4:
            by_net[(str(ipaddress.ip_network(f"{ip}/24", strict=False)), port)].add(ip)
        else:
            out.append(Destination(ip, port))
    for (net, port), ips in by_net.items():
        if len(ips) > ADDRS_PER_NET:
            out.append(Destination(net, port))
        else:
            out.extend(Destination(ip, port) for ip in ips)
    return sorted(out, key=lambda d: (d.port, d.addr))

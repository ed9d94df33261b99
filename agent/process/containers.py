"""Container ids from cgroup paths, for processes read from /proc.

The user-space twin of the kernel's walk in ebpf/include/proc_meta.h (which
fills exec and fork records): the same naming rules, applied to the lines of
/proc/PID/cgroup — the default hierarchy (``0::``) first, then the v1
hierarchies in file order, each from the leaf up — first match wins.

Naming rules (docker, containerd/CRI, CRI-O, podman, kubelet):
- a component that is exactly 64 lowercase hex digits
  (``/docker/<id>``, ``/kubepods/burstable/pod<uid>/<id>``);
- a systemd scope ``<prefix>-<id>.scope`` (``docker-``, ``cri-containerd-``,
  ``crio-``, ``libpod-``), except ``*-conmon-<id>.scope``, the monitor.

Results are cached per /proc/PID/cgroup content: processes of one container
share it, so a snapshot of a busy host parses each distinct set once.
"""

from __future__ import annotations

import re
from functools import lru_cache

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SCOPE = re.compile(r".*-([0-9a-f]{64})\.scope")
_NAME_MAX = 127  # the kernel tests names shorter than RS_CGROUP_NAME
_DEPTH = 16  # components tested from each leaf up, as the kernel walk


def container_id_of_name(name: str) -> str:
    """The container id a single cgroup name carries, or ""."""
    if _HEX64.fullmatch(name):
        return name
    m = _SCOPE.fullmatch(name) if len(name) <= _NAME_MAX else None
    if m is None or name[: m.start(1) - 1].endswith("conmon"):
        return ""
    return m.group(1)


def container_id_of_path(path: str) -> str:
    """The container id of a cgroup path (leaf first), or ""."""
    parts = [p for p in path.split("/") if p]
    for name in reversed(parts[-_DEPTH:]):
        cid = container_id_of_name(name)
        if cid:
            return cid
    return ""


@lru_cache(maxsize=1024)
def container_id_of_cgroup_file(text: str) -> str:
    """The container id from the content of /proc/PID/cgroup, or ""."""
    lines = [line.split(":", 2) for line in text.splitlines()]
    entries = [parts for parts in lines if len(parts) == 3]
    # the default hierarchy ("0::/path") first, as the kernel walk does
    entries.sort(key=lambda parts: parts[0] != "0")
    for _hid, _controllers, path in entries:
        cid = container_id_of_path(path)
        if cid:
            return cid
    return ""

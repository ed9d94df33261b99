"""cgroup v2 ids of processes read from /proc (the snapshot at start).

The kernel side fills ``rs_task_meta.cgroup_id`` with the id of the task's
default-hierarchy cgroup (its kernfs node id, which is also the inode
number of the cgroup's directory in cgroupfs). For a process found in
/proc the same number is the inode of ``<cgroup2 mount>/<path>``, the path
from the ``0::`` line of /proc/PID/cgroup. 0: no cgroup v2 (a v1-only
host), or the directory is gone.
"""

from __future__ import annotations

import os
from functools import lru_cache

_MOUNTS = "/proc/self/mounts"


@lru_cache(maxsize=1)
def cgroup2_mount(mounts: str = _MOUNTS) -> str | None:
    """Where the agent sees cgroup v2 mounted (the first cgroup2 mount), or None."""
    try:
        with open(mounts, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "cgroup2":
                    return parts[1].replace("\\040", " ")
    except OSError:
        return None
    return None


def cgroup_id_of_cgroup_file(text: str, root: str | None = None) -> int:
    """The cgroup v2 id of the process whose /proc/PID/cgroup is ``text``, or 0."""
    root = root if root is not None else cgroup2_mount()
    if root is None:
        return 0
    for line in text.splitlines():
        if line.startswith("0::"):
            try:
                return os.stat(root + line[3:].rstrip("\n")).st_ino
            except OSError:
                return 0
    return 0

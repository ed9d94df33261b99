"""Network namespaces the agent is told to watch (``--netns``).

A namespace is named as ``ip netns`` does (a name under /run/netns), by a
path to a namespace file (``/proc/PID/ns/net``, a bind mount), or ``self``:
the agent's own namespace (the default). Each is identified by the inode
number of its namespace file, which is also what the kernel puts in records
(``ns.inum``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

NETNS_RUN_DIR = Path("/run/netns")
SELF = "self"
_SELF_PATH = Path("/proc/self/ns/net")


class NamespaceError(ValueError):
    """A namespace that cannot be watched (missing, not a namespace file)."""


@dataclass(frozen=True)
class Namespace:
    label: str          # as given (``self``, a name, a path)
    path: Path | None   # None: the agent's own namespace
    inode: int

    @property
    def pyroute2_arg(self) -> str | None:
        """What pyroute2 takes as ``netns=`` (None: the current one)."""
        return None if self.path is None else str(self.path)


def own_inode() -> int:
    return os.stat(_SELF_PATH).st_ino


def resolve(spec: str) -> Namespace:
    """``self``, a name under /run/netns, or a path, checked to exist."""
    if spec == SELF:
        return Namespace(SELF, None, own_inode())
    if "/" in spec:
        path = Path(spec)
    else:
        path = NETNS_RUN_DIR / spec
    try:
        st = os.stat(path)
    except FileNotFoundError:
        hint = " (`ip netns list` shows the names)" if "/" not in spec else ""
        raise NamespaceError(f"network namespace {spec!r}: {path} does not exist{hint}") from None
    except OSError as exc:
        raise NamespaceError(f"network namespace {spec!r}: cannot stat {path}: {exc.strerror}") from None
    if st.st_ino == own_inode():
        return Namespace(spec, None, st.st_ino)
    return Namespace(spec, path, st.st_ino)


def resolve_all(specs: list[str] | tuple[str, ...]) -> list[Namespace]:
    """Each namespace once (by inode), in the order given; default: ``self``."""
    out: dict[int, Namespace] = {}
    for spec in specs or (SELF,):
        ns = resolve(spec)
        out.setdefault(ns.inode, ns)
    return list(out.values())


__all__ = ["Namespace", "NamespaceError", "resolve", "resolve_all", "own_inode", "SELF"]

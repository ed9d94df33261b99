"""Interface names by (network namespace, ifindex), kept by the DNS
classifier (agent/net/classifier.py) and read by the decoder. Apart from the
classifier so that the runtime does not import pyroute2 (~150 ms at start)
unless a policy needs the classifier."""

from __future__ import annotations

import threading


class InterfaceTable:
    """(namespace inode, ifindex) -> interface name, shared with the decoder."""

    def __init__(self) -> None:
        self._names: dict[tuple[int, int], str] = {}
        self._lock = threading.Lock()

    def set(self, netns: int, ifindex: int, name: str) -> None:
        with self._lock:
            self._names[(netns, ifindex)] = name

    def drop(self, netns: int, ifindex: int) -> None:
        with self._lock:
            self._names.pop((netns, ifindex), None)

    def name(self, netns: int, ifindex: int) -> str | None:
        return self._names.get((netns, ifindex))

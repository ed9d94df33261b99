"""The DNS classifier on every interface of the watched namespaces.

One thread owns every netlink socket (pyroute2 keeps per-thread state):

1. start: removes what dead agents left (their filters by name, the clsact
   qdiscs their state files list), then per namespace subscribes to link
   events *first* and lists the interfaces second (an interface created in
   between is attached twice at worst, which is checked), and attaches the
   classifier to each one's egress;
2. runs: attaches to every interface that appears (RTM_NEWLINK: the veth of
   a new container, a device moved into the namespace), forgets those that
   go (RTM_DELLINK: their qdiscs went with them); a subscription that
   overflowed (ENOBUFS) is reopened and the interfaces listed again;
3. close: removes our filters and the qdiscs we created (when empty), then
   the state file.

A failure on one interface (an ``ingress`` qdisc excludes clsact...) is
logged and counted; the others go on. Interface names are published in an
:class:`InterfaceTable` for the decoder (``network.device.ifname``).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRSocket
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_LINK

from .interfaces import InterfaceTable
from .namespaces import Namespace, own_inode
from .owners import Owner, State, StateFiles, me
from .tc import Attachment, NamespaceTc, TcError

log = logging.getLogger(__name__)


@dataclass
class ClassifierStats:
    attached: int = 0          # interfaces attached so far (late ones included)
    late: int = 0              # of which appeared after the start
    failed: int = 0            # interfaces we could not attach to
    resyncs: int = 0           # link subscriptions reopened after an overflow
    stale_filters: int = 0     # left by dead agents, removed at start
    stale_qdiscs: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Watched:
    ns: Namespace
    tc: NamespaceTc
    events: IPRSocket
    attached: dict[int, Attachment] = field(default_factory=dict)


class DnsClassifier:
    """See the module docstring. ``with DnsClassifier(fd, namespaces):``."""

    def __init__(self, prog_fd: int, namespaces: list[Namespace], interfaces: InterfaceTable | None = None,
                 *, owner: Owner | None = None, state_files: StateFiles | None = None) -> None:
        self.prog_fd = prog_fd
        self.namespaces = namespaces
        self.interfaces = interfaces or InterfaceTable()
        self.owner = owner or me()
        self.state_files = state_files or StateFiles()
        self.stats = ClassifierStats()
        self._state = State(self.owner)
        self._watched: list[_Watched] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="net-classifier", daemon=True)
        self._closed = False

    # -- the caller's side ------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> DnsClassifier:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the DNS classifier was not attached within {timeout:g} s")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error
        if not self._thread.is_alive():
            raise RuntimeError("the DNS classifier's thread ended while attaching (see the errors above)")
        return self

    def close(self, timeout: float = 60.0) -> None:
        """Detach from every interface (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            os.write(self._wake_w, b"x")
            self._thread.join(timeout)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> DnsClassifier:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def summary(self) -> str:
        s = self.stats
        return (f"DNS classifier: {s.attached} interface(s) attached ({s.late} after start), "
                f"{s.failed} failed, {s.resyncs} resync(s); removed {s.stale_filters} filter(s) and "
                f"{s.stale_qdiscs} qdisc(s) left by dead agents")

    # -- the thread -------------------------------------------------------------------
    def _run(self) -> None:
        started = False
        try:
            self._remove_dead()
            for ns in self.namespaces:
                w = self._open(ns)
                self._watched.append(w)
                self._attach_all(w, late=False)
            self._save()
            started = True
            self._ready.set()
            self._watch()
        except (NetlinkError, OSError, TcError, RuntimeError, ValueError) as exc:
            if not started:
                self._error = exc
            else:
                log.error("DNS classifier: watching interfaces failed (%s); detaching it", exc)
        finally:
            self._detach_all()
            self._ready.set()

    def _open(self, ns: Namespace) -> _Watched:
        events = IPRSocket(netns=ns.pyroute2_arg, flags=0)
        events.bind(groups=RTMGRP_LINK)  # before listing: no interface falls in between
        return _Watched(ns, NamespaceTc(ns), events)

    def _attach_all(self, w: _Watched, late: bool) -> None:
        for ifindex, name in sorted(w.tc.links().items()):
            self._attach(w, ifindex, name, late)

    def _attach(self, w: _Watched, ifindex: int, name: str, late: bool) -> None:
        self.interfaces.set(w.ns.inode, ifindex, name)
        if ifindex in w.attached:
            return
        try:
            att = w.tc.attach(ifindex, name, self.prog_fd, self.owner)
        except TcError as exc:
            self.stats.failed += 1
            self.stats.errors.append(str(exc))
            log.warning("DNS classifier not attached: %s", exc)
            return
        w.attached[ifindex] = att
        self.stats.attached += 1
        self.stats.late += int(late)
        log.debug("DNS classifier on %s/%s (prio %d, handle %d)", w.ns.label, name, att.prio, att.handle)
        if att.created_qdisc:
            self._state.qdiscs.setdefault(w.ns.inode, {})[ifindex] = name
            self._state.paths[w.ns.inode] = w.ns.pyroute2_arg
            self._save()

    def _save(self) -> None:
        self.state_files.write(self._state)

    def _watch(self) -> None:
        while True:
            fds = {w.events.socket.fileno(): w for w in self._watched}
            readable, _, _ = select.select([self._wake_r, *fds], [], [])
            if self._wake_r in readable:
                return
            for fd in readable:
                self._on_events(fds[fd])

    def _on_events(self, w: _Watched) -> None:
        try:
            messages = w.events.get()
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            # events were dropped: subscribe again and list every interface
            self.stats.resyncs += 1
            log.warning("%s: link events overflowed; listing the interfaces again", w.ns.label)
            w.events.close()
            w.events = IPRSocket(netns=w.ns.pyroute2_arg, flags=0)
            w.events.bind(groups=RTMGRP_LINK)
            self._attach_all(w, late=True)
            return
        for msg in messages:
            event = msg.get("event")
            ifindex = int(msg.get("index") or 0)
            name = msg.get_attr("IFLA_IFNAME")
            if event == "RTM_NEWLINK" and ifindex and name:
                self._attach(w, ifindex, str(name), late=True)
            elif event == "RTM_DELLINK" and ifindex:
                # the device (or its move to another namespace) took the qdisc along
                w.attached.pop(ifindex, None)
                self.interfaces.drop(w.ns.inode, ifindex)
                if self._state.qdiscs.get(w.ns.inode, {}).pop(ifindex, None) is not None:
                    self._save()

    def _detach_all(self) -> None:
        for w in self._watched:
            for att in list(w.attached.values()):
                try:
                    w.tc.detach(att)
                except (TcError, NetlinkError, OSError) as exc:
                    self.stats.errors.append(str(exc))
                    log.warning("DNS classifier: %s", exc)
            w.attached.clear()
            w.tc.close()
            w.events.close()
        self._watched.clear()
        self.state_files.remove(self.owner)

    def _remove_dead(self) -> None:
        """Filters and qdiscs of agents that died without removing them."""
        dead = list(self.state_files.dead())
        qdiscs: dict[int, dict[int, str]] = {}
        for _, state in dead:
            for ino, made in state.qdiscs.items():
                qdiscs.setdefault(ino, {}).update(made)
        namespaces = {ns.inode: ns for ns in self.namespaces}
        for _, state in dead:
            for ino, ns_path in state.paths.items():
                if ino in namespaces or ns_path is None:
                    continue
                try:
                    if os.stat(ns_path).st_ino == ino:
                        namespaces[ino] = Namespace(ns_path, None if ino == own_inode() else Path(ns_path), ino)
                except OSError:
                    continue  # that namespace is gone, and what was in it
        me_ = self.owner

        def stale(o: Owner) -> bool:
            return o != me_ and not o.alive()

        for ns in namespaces.values():
            tc = NamespaceTc(ns)
            try:
                f, q = tc.remove_stale(stale, qdiscs.get(ns.inode, {}))
            finally:
                tc.close()
            self.stats.stale_filters += f
            self.stats.stale_qdiscs += q
        for state_path, _ in dead:
            state_path.unlink(missing_ok=True)
        if self.stats.stale_filters or self.stats.stale_qdiscs:
            log.warning("removed %d tc filter(s) and %d clsact qdisc(s) left by agents that did not stop cleanly",
                        self.stats.stale_filters, self.stats.stale_qdiscs)


__all__ = ["DnsClassifier", "InterfaceTable", "ClassifierStats"]

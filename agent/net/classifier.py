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

It holds a set of programs, each attached to every interface: ``add`` puts
one more beside those attached (a reload's next generation, with its own
filter on the same hook: ebpf/hooks/dns.h rs_dns_other_generation makes the
two report each packet once), ``remove`` takes one off; both run in the
thread and return when done on every interface. The clsact qdiscs it
created stay its own across the change.

A failure on one interface (an ``ingress`` qdisc excludes clsact...) is
logged and counted; the others go on. Interface names are published in an
:class:`InterfaceTable` for the decoder (``network.device.ifname``).
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import select
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRSocket
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_LINK

from codegen.eventtypes import PRODUCED

from .interfaces import InterfaceTable
from .namespaces import Namespace, own_inode
from .owners import Owner, State, StateFiles, me
from .tc import EGRESS, INGRESS, Attachment, NamespaceTc, TcError

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


# The classifiers (the table's EventType.tc_programs) and the clsact hook each goes on.
HOOKS = {p: EGRESS if hook == "egress" else INGRESS for t in PRODUCED for p, hook in t.tc_programs}


@dataclass(frozen=True)
class Program:
    """A loaded classifier and the clsact hook it goes on."""

    fd: int
    parent: int = EGRESS

    @classmethod
    def named(cls, name: str, fd: int) -> Program:
        """Program ``name`` of the probe object (HOOKS says where it goes)."""
        try:
            return cls(fd, HOOKS[name])
        except KeyError:
            raise ValueError(f"classifier {name}: no tc_programs entry of the event-type table names it, so no tc hook "
                             f"is known for it") from None


@dataclass
class _Watched:
    ns: Namespace
    tc: NamespaceTc
    events: IPRSocket
    # ifindex -> program -> our filter there
    attached: dict[int, dict[Program, Attachment]] = field(default_factory=dict)
    created: set[int] = field(default_factory=set)   # ifindexes whose clsact qdisc we added


class DnsClassifier:
    """See the module docstring. ``with DnsClassifier(fd, namespaces):``."""

    def __init__(self, programs: int | list[Program], namespaces: list[Namespace],
                 interfaces: InterfaceTable | None = None,
                 *, owner: Owner | None = None, state_files: StateFiles | None = None) -> None:
        self.programs = [Program(programs)] if isinstance(programs, int) else list(programs)
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
        self._commands: queue.SimpleQueue[tuple[str, list[Program], threading.Event]] = queue.SimpleQueue()
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

    def add(self, programs: list[Program], timeout: float = 60.0) -> None:
        """Attach ``programs`` too, to every interface, beside those attached."""
        self._command("add", programs, timeout)

    def remove(self, programs: list[Program], timeout: float = 60.0) -> None:
        """Take ``programs`` off every interface (those not attached: ignored)."""
        self._command("remove", programs, timeout)

    def _command(self, what: str, programs: list[Program], timeout: float) -> None:
        if self._closed or not self._thread.is_alive():
            if what == "add":
                raise RuntimeError("the DNS classifier is not running: cannot attach another program")
            return
        done = threading.Event()
        self._commands.put((what, programs, done))
        os.write(self._wake_w, b"c")
        if not done.wait(timeout):
            raise TimeoutError(f"the DNS classifier did not {what} programs within {timeout:g} s")

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

    def _attach(self, w: _Watched, ifindex: int, name: str, late: bool,
                programs: list[Program] | None = None) -> None:
        """Our programs (``programs``, default all) on one interface."""
        self.interfaces.set(w.ns.inode, ifindex, name)
        new = ifindex not in w.attached
        on = w.attached.setdefault(ifindex, {})
        changed = False
        for prog in programs if programs is not None else self.programs:
            if prog in on:
                continue
            try:
                att = w.tc.attach(ifindex, name, prog.fd, self.owner, prog.parent)
            except TcError as exc:
                self.stats.failed += 1
                self.stats.errors.append(str(exc))
                log.warning("DNS classifier not attached: %s", exc)
                continue
            on[prog] = att
            log.debug("DNS classifier on %s/%s (hook %#x, prio %d, handle %d)", w.ns.label, name,
                      att.parent, att.prio, att.handle)
            if att.created_qdisc:
                w.created.add(ifindex)
                self._state.qdiscs.setdefault(w.ns.inode, {})[ifindex] = name
                self._state.paths[w.ns.inode] = w.ns.pyroute2_arg
                changed = True
        if not on:
            del w.attached[ifindex]
        elif new:
            self.stats.attached += 1
            self.stats.late += int(late)
        if changed:
            self._save()

    def _detach(self, w: _Watched, ifindex: int, prog: Program) -> None:
        att = w.attached.get(ifindex, {}).pop(prog, None)
        if att is None:
            return
        # the qdisc goes with the interface's last filter of ours (if we made it)
        last = not w.attached[ifindex]
        if last:
            del w.attached[ifindex]
        ours = last and ifindex in w.created
        try:
            w.tc.detach(Attachment(att.ifindex, att.ifname, att.prio, att.handle, ours, att.parent))
        except (TcError, NetlinkError, OSError) as exc:
            self.stats.errors.append(str(exc))
            log.warning("DNS classifier: %s", exc)
        if ours:
            w.created.discard(ifindex)
            if self._state.qdiscs.get(w.ns.inode, {}).pop(ifindex, None) is not None:
                self._save()

    def _save(self) -> None:
        self.state_files.write(self._state)

    def _watch(self) -> None:
        while True:
            fds = {w.events.socket.fileno(): w for w in self._watched}
            readable, _, _ = select.select([self._wake_r, *fds], [], [])
            if self._wake_r in readable:
                if b"x" in os.read(self._wake_r, 64):
                    return
                self._run_commands()
                continue
            for fd in readable:
                self._on_events(fds[fd])

    def _run_commands(self) -> None:
        while True:
            try:
                what, programs, done = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                if what == "add":
                    self.programs.extend(p for p in programs if p not in self.programs)
                    for w in self._watched:
                        for ifindex, name in sorted(w.tc.links().items()):
                            self._attach(w, ifindex, name, late=False, programs=programs)
                else:
                    self.programs = [p for p in self.programs if p not in programs]
                    for w in self._watched:
                        for ifindex in list(w.attached):
                            for prog in programs:
                                self._detach(w, ifindex, prog)
            finally:
                done.set()

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
                w.created.discard(ifindex)
                self.interfaces.drop(w.ns.inode, ifindex)
                if self._state.qdiscs.get(w.ns.inode, {}).pop(ifindex, None) is not None:
                    self._save()

    def _detach_all(self) -> None:
        for w in self._watched:
            for ifindex in list(w.attached):
                for prog in list(w.attached.get(ifindex, {})):
                    self._detach(w, ifindex, prog)
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


__all__ = ["DnsClassifier", "InterfaceTable", "ClassifierStats", "Program"]

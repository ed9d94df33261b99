"""tc operations in one network namespace, through pyroute2: the clsact
qdisc, our direct-action bpf filter on its egress hook, and finding the
filters and qdiscs a dead agent left.

Our filters: kind ``bpf``, protocol ETH_P_ALL, direct-action, named
``rsagent:<pid>:<start>`` (agent/net/owners.py), on the first priority from
PRIO that accepts them (priority 1 runs before the filters most tools add,
so a redirecting filter cannot hide a packet from us; the program always
returns TC_ACT_UNSPEC, which hands the packet on to the next filter
untouched), with the smallest free handle.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .namespaces import Namespace
from .owners import Owner

log = logging.getLogger(__name__)

TC_H_CLSACT = 0xFFFFFFF1
EGRESS = 0xFFFFFFF3                 # TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)
INGRESS = 0xFFFFFFF2
PRIO = 1
PRIO_TRIES = 16                     # priorities tried when one holds another protocol's filters
HANDLE_MAX = 0xFFFF


class TcError(RuntimeError):
    """A tc operation that failed on one interface (the others go on)."""


@dataclass(frozen=True)
class Attachment:
    ifindex: int
    ifname: str
    prio: int
    handle: int
    created_qdisc: bool            # the clsact qdisc is ours (removed with the filter when empty)
    parent: int = EGRESS           # the clsact hook: EGRESS or INGRESS


def _bpf_name(msg: object) -> str | None:
    opts = msg.get_attr("TCA_OPTIONS")  # type: ignore[attr-defined]
    return opts.get_attr("TCA_BPF_NAME") if opts is not None else None


class NamespaceTc:
    """One network namespace's rtnetlink socket (pyroute2 IPRoute). Not
    thread-safe: one thread uses it (pyroute2 keeps per-thread state)."""

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        # flags=0: never create the namespace (pyroute2's default would)
        self.ipr = IPRoute(netns=ns.pyroute2_arg, flags=0)

    def close(self) -> None:
        self.ipr.close()

    def links(self) -> dict[int, str]:
        """ifindex -> name of every interface."""
        return {int(link["index"]): str(link.get_attr("IFLA_IFNAME")) for link in self.ipr.get_links()}

    def _qdisc_kinds(self, ifindex: int) -> set[str]:
        return {str(q.get_attr("TCA_KIND")) for q in self.ipr.get_qdiscs(index=ifindex)}

    def _filters(self, ifindex: int, parent: int) -> list[tuple[int, int, str | None]]:
        """(prio, handle, name) of the filters on a clsact hook (chain headers skipped)."""
        out = []
        for f in self.ipr.get_filters(index=ifindex, parent=parent):
            if f["handle"]:
                out.append((int(f["info"]) >> 16, int(f["handle"]), _bpf_name(f)))
        return out

    def attach(self, ifindex: int, ifname: str, prog_fd: int, owner: Owner, parent: int = EGRESS) -> Attachment:
        """Our filter on one of the interface's clsact hooks (``parent``:
        EGRESS or INGRESS; the clsact qdisc added if absent). Another filter
        of ours already there (a reload's other generation) stays: the new
        one gets another handle."""
        where = f"{self.ns.label}/{ifname}"
        try:
            kinds = self._qdisc_kinds(ifindex)
            if "ingress" in kinds:
                raise TcError(f"{where}: an ingress qdisc is installed, which excludes clsact; "
                              f"DNS queries leaving it are not seen")
            created = False
            if "clsact" not in kinds:
                self.ipr.tc("add", "clsact", ifindex)
                created = True
            taken = {(p, h) for p, h, _ in self._filters(ifindex, parent)}
        except NetlinkError as exc:
            raise TcError(f"{where}: {exc.args[-1] if exc.args else exc} (errno {exc.code})") from exc
        last: NetlinkError | None = None
        for prio in range(PRIO, PRIO + PRIO_TRIES):
            handle = next((h for h in range(1, HANDLE_MAX) if (prio, h) not in taken), None)
            if handle is None:
                continue
            try:
                self.ipr.tc("add-filter", "bpf", ifindex, handle=handle, fd=prog_fd, name=owner.filter_name,
                            parent=parent, classid=1, direct_action=True, prio=prio)
            except NetlinkError as exc:
                # EINVAL: this priority holds filters of another protocol; EEXIST: a race
                if exc.code not in (errno.EINVAL, errno.EEXIST):
                    self._drop_qdisc(ifindex, created)
                    raise TcError(f"{where}: adding the bpf filter: {exc} (errno {exc.code})") from exc
                last = exc
                continue
            return Attachment(ifindex, ifname, prio, handle, created, parent)
        self._drop_qdisc(ifindex, created)
        raise TcError(f"{where}: no priority from {PRIO} to {PRIO + PRIO_TRIES - 1} accepts our filter ({last})")

    def detach(self, att: Attachment) -> None:
        """Remove our filter, then the qdisc if we created it and it is empty.
        An interface that is gone took both with it."""
        try:
            self.ipr.tc("del-filter", "bpf", att.ifindex, handle=att.handle, parent=att.parent, prio=att.prio)
        except NetlinkError as exc:
            if exc.code not in (errno.ENOENT, errno.ENODEV, errno.EINVAL):
                raise TcError(f"{self.ns.label}/{att.ifname}: removing our filter: {exc}") from exc
        self._drop_qdisc(att.ifindex, att.created_qdisc)

    def _drop_qdisc(self, ifindex: int, ours: bool) -> bool:
        """Delete the clsact qdisc if it is ours and holds no filter."""
        if not ours:
            return False
        try:
            if "clsact" not in self._qdisc_kinds(ifindex):
                return False
            if self._filters(ifindex, EGRESS) or self._filters(ifindex, INGRESS):
                return False  # someone else's filters arrived meanwhile
            self.ipr.tc("del", "clsact", ifindex)
            return True
        except NetlinkError as exc:
            if exc.code in (errno.ENOENT, errno.ENODEV, errno.EINVAL):
                return False
            raise TcError(f"{self.ns.label}: removing the clsact qdisc of ifindex {ifindex}: {exc}") from exc

    def remove_stale(self, stale: Callable[[Owner], bool], qdiscs: dict[int, str]) -> tuple[int, int]:
        """Remove every filter of ours whose owner is ``stale`` (a dead agent),
        then the ``qdiscs`` a dead agent created (ifindex -> the interface's
        name then: a new interface with a reused index is not touched) if
        left empty. Returns (filters, qdiscs) removed."""
        filters = removed_qdiscs = 0
        for ifindex, ifname in self.links().items():
            try:
                found = [(parent, *f) for parent in (EGRESS, INGRESS) for f in self._filters(ifindex, parent)]
            except NetlinkError:
                continue  # the interface went away
            for parent, prio, handle, name in found:
                owner = Owner.parse(name)
                if owner is None or not stale(owner):
                    continue
                self.detach(Attachment(ifindex, ifname, prio, handle, False, parent))
                filters += 1
                log.info("removed a filter left by agent %d on %s/%s", owner.pid, self.ns.label, ifname)
            if qdiscs.get(ifindex) == ifname and self._drop_qdisc(ifindex, True):
                removed_qdiscs += 1
        return filters, removed_qdiscs


__all__ = ["Attachment", "NamespaceTc", "TcError", "EGRESS", "INGRESS", "PRIO"]

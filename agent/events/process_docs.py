"""The ``process`` part of event documents (docs/interfaces.md), and the
``exec``/``fork``/``exit`` bodies: field names follow codegen/fields.py's
PROCESS_TEMPLATE.

- ``process``: the image from the process cache (file, argv, cookie, tty,
  container, lineage), with the calling task's state at the time of the
  event laid over it (tid, comm, credentials, cgroup id);
- ``process.ancestors``: parent first, up to pid 1 (or kthreadd); each an
  image document; the last one carries ``truncated: true`` when the chain
  was cut (depth limit, memory bound, or a parent the agent never knew);
- ``argv`` includes argv[0] (fields.py: "arguments, argv[0] included");
  ``argv0``, ``args`` (after argv[0], space-joined) and ``argc`` are derived;
- ``is_thread``: forked and not exec'd since (the reference's meaning), not
  "a non-leader thread" — events of threads carry ``tid != pid``.

An image's document is built once and shared by every event that shows it
(as the process or as an ancestor); event-time values are laid over a copy.
"""

from __future__ import annotations

from typing import Any

from agent.evaluator.event import Lazy, Resolved, ResolvedList, resolved

from ..process.model import Credentials, Process
from .decode import TaskContext
from ..users import UserNames

ANCESTORS_MAX = 256


def creds_fields(c: Credentials, users: UserNames) -> dict[str, Any]:
    uid, gid = c.uid, c.gid
    return {
        "uid": uid, "gid": gid, "euid": c.euid, "egid": c.egid, "fsuid": c.fsuid, "fsgid": c.fsgid,
        "user": users.lazy_user(uid), "group": users.lazy_group(gid),
        "cap_effective": c.cap_effective, "cap_permitted": c.cap_permitted,
    }


def image_doc(proc: Process, users: UserNames, *, keep: bool = True) -> dict[str, Any]:
    """The document of one image: what process.*, the ancestors and exec.*
    show of it. Kept on the image when ``keep`` (ancestors are shown again
    and again; most images are never anyone's ancestor and need not keep it)."""
    doc = proc.doc
    if doc is not None:
        return doc
    argv = list(proc.argv)
    doc = {
        "pid": proc.pid,
        "ppid": proc.ppid,
        "comm": proc.comm,
        "cookie": proc.cookie,
        "created_at": proc.created_at,
        "file": proc.file if proc.file is not None else {},
        "argv": argv,
        "argv0": argv[0] if argv else "",
        "args": " ".join(argv[1:]),
        "argc": len(argv),
        "args_truncated": proc.args_truncated,
        "tty_name": proc.tty_name,
        "is_thread": proc.is_thread,
        "is_kworker": proc.is_kworker,
        "container": {"id": proc.container_id},
        "auid": proc.auid,
        "cgroup": cgroup_doc(proc.cgroup_id),
        **creds_fields(proc.creds, users),
    }
    if proc.envp is not None:
        doc["envp"] = list(proc.envp)
        doc["envs"] = [e.split("=", 1)[0] for e in proc.envp]
        doc["envs_truncated"] = proc.envs_truncated
    if proc.interpreter is not None:
        doc["interpreter"] = {"file": proc.interpreter}
    if proc.exec_time:
        doc["exec_time"] = proc.exec_time
    if proc.from_snapshot:
        doc["from_snapshot"] = True
    elif proc.source.value in ("procfs", "partial"):
        doc["source"] = proc.source.value
    if keep:
        # Shown again and again (every event of the image and of its
        # descendants): resolved once, never walked again by materialize().
        doc = resolved(doc)
        proc.doc = doc
    return doc


def ancestor_docs(proc: Process, users: UserNames) -> list[dict[str, Any]]:
    """``process.ancestors`` of an event of ``proc``: made once per chain and
    kept on the image (every event of the image shows the same list, and its
    JSON is made once, agent/sinks/record.py); made again when the chain
    changed (a lineage cut above it)."""
    chain, truncated = proc.ancestors(ANCESTORS_MAX)
    cached = proc.lineage_doc
    # the same images, each with the same document (an image whose
    # credentials or name changed dropped its document: made again)
    if (cached is not None and len(cached[0]) == len(chain)
            and all(a is b and a.doc is d for a, b, d in zip(cached[0], chain, cached[1], strict=True))):
        return cached[2]
    docs = [image_doc(p, users) for p in chain]
    made = [p.doc for p in chain]
    if truncated:
        last = chain[-1] if chain else proc
        if docs:
            # a copy: the shared image document stays unflagged
            docs[-1] = Resolved({**docs[-1], "truncated": True})
        elif last.ppid:
            docs.append(Resolved({"pid": last.ppid, "truncated": True}))
    shared = ResolvedList(docs)
    proc.lineage_doc = (chain, made, shared)
    return shared


def process_doc(
    proc: Process | None,
    *,
    pid: int,
    tid: int,
    task: TaskContext,
    users: UserNames,
) -> dict[str, Any]:
    """``process`` of an event: the image from the cache; tid, comm,
    credentials and cgroup from the kernel at the time of the event.

    On the hot path (every event): a shallow copy of the image's cached
    document, credentials laid over only when they changed since the image
    started. A running image keeps its document; an exited one drops it
    (cache.on_exit) unless it is shown again as an ancestor.
    """
    if proc is not None:
        base = proc.doc
        if base is None:
            base = image_doc(proc, users, keep=proc.exited_at is None)
        doc = base.copy()
        doc["ancestors"] = Lazy(lambda: ancestor_docs(proc, users))
        c = proc.creds
        if not (task.uid == c.uid and task.gid == c.gid and task.euid == c.euid
                and task.egid == c.egid and task.fsuid == c.fsuid and task.fsgid == c.fsgid
                and task.cap_effective == c.cap_effective and task.cap_permitted == c.cap_permitted):
            doc.update(creds_fields(task.creds, users))
    else:
        doc = {"pid": pid, "ppid": task.ppid, "file": {}, "ancestors": [], "container": {"id": ""},
               **creds_fields(task.creds, users)}
    doc["tid"] = tid
    doc["comm"] = task.comm
    if proc is None or task.cgroup_id != proc.cgroup_id:  # else the image's own (shared, never written)
        doc["cgroup"] = cgroup_doc(task.cgroup_id)
    return doc


def cgroup_doc(cgroup_id: int) -> dict[str, Any]:
    """``cgroup`` of a process: its v2 id, which is its directory's inode in cgroupfs."""
    return {"id": str(cgroup_id), "file": {"inode": cgroup_id}}


def body_doc(process: dict[str, Any]) -> dict[str, Any]:
    """``exec``/``fork``/``exit``: the process fields of the event's image,
    without the lineage."""
    return {k: v for k, v in process.items() if k != "ancestors"}

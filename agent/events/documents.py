"""Building the parts of event documents (interfaces.md) shared by every
event type: files, processes, credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codegen.event import Lazy

from ..paths import basename, decode_path
from ..process.model import Process
from ..users import UserNames

RS_FILE_PRESENT = 1
RS_FILE_PATH_TRUNCATED = 2
RS_FILE_UPPER_LAYER = 4


def path_fields(raw: bytes, doc: dict[str, Any]) -> dict[str, Any]:
    """Set ``path``, ``name`` (and ``path_raw_b64`` when not UTF-8) on doc."""
    text, raw_b64 = decode_path(raw)
    doc["path"] = text
    doc["name"] = decode_path(basename(raw))[0] if raw else ""
    if raw_b64 is not None:
        doc["path_raw_b64"] = raw_b64
    return doc


def file_doc(
    path: bytes,
    *,
    inode: int,
    mount_id: int,
    mode: int,
    uid: int,
    gid: int,
    fs_type: str,
    flags: int,
    ctime_ns: int,
    mtime_ns: int,
    users: UserNames,
) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    path_fields(path, doc)
    doc.update(
        inode=inode,
        mount_id=mount_id,
        mode=mode,
        uid=uid,
        gid=gid,
        user=Lazy(lambda: users.user(uid)),
        group=Lazy(lambda: users.group(gid)),
        filesystem=fs_type,
        in_upper_layer=bool(flags & RS_FILE_UPPER_LAYER),
        change_time=ctime_ns,
        modification_time=mtime_ns,
    )
    if flags & RS_FILE_PATH_TRUNCATED:
        doc["path_truncated"] = True
    return doc


def _image_doc(proc: Process) -> dict[str, Any]:
    """What every view of a process image shows (process.*, ancestors, exec.*)."""
    doc: dict[str, Any] = {
        "pid": proc.pid,
        "ppid": proc.ppid,
        "comm": proc.comm,
        "created_at": proc.created_at,
        "file": proc.file if proc.file is not None else {},
        "argv0": proc.argv[0] if proc.argv else "",
        "argv": proc.argv[1:],
        "args": " ".join(proc.argv[1:]),
        "args_truncated": proc.args_truncated,
    }
    if proc.interpreter is not None:
        doc["interpreter"] = {"file": proc.interpreter}
    if proc.exec_time:
        doc["exec_time"] = proc.exec_time
    if proc.from_snapshot:
        doc["from_snapshot"] = True
    return doc


def ancestor_docs(proc: Process) -> list[dict[str, Any]]:
    chain, truncated = proc.ancestors()
    docs = [_image_doc(p) for p in chain]
    if truncated and docs:
        docs[-1]["truncated"] = True
    return docs


@dataclass(frozen=True, slots=True)
class TaskContext:
    """struct rs_proc_ctx, decoded: the calling task when the event happened."""

    ppid: int
    uid: int
    gid: int
    euid: int
    egid: int
    fsuid: int
    fsgid: int
    cap_effective: int
    cap_permitted: int
    cgroup_id: int
    start_boot_ns: int
    comm: str


def process_doc(
    proc: Process | None,
    *,
    pid: int,
    tid: int,
    task: TaskContext,
    users: UserNames,
) -> dict[str, Any]:
    """``process`` of an event: the image from the cache; credentials and comm
    from the kernel at the time of the event."""
    if proc is not None:
        doc = _image_doc(proc)
        doc["ancestors"] = Lazy(lambda: ancestor_docs(proc))
    else:
        doc = {"pid": pid, "ppid": task.ppid, "file": {}, "ancestors": []}
    uid, gid = task.uid, task.gid
    doc.update(
        tid=tid,
        is_thread=tid != pid,
        comm=task.comm,
        uid=uid,
        gid=gid,
        euid=task.euid,
        egid=task.egid,
        fsuid=task.fsuid,
        fsgid=task.fsgid,
        user=Lazy(lambda: users.user(uid)),
        group=Lazy(lambda: users.group(gid)),
        cap_effective=task.cap_effective,
        cap_permitted=task.cap_permitted,
        cgroup={"id": task.cgroup_id},
    )
    doc.setdefault("container", {"id": ""})
    return doc

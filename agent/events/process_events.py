"""Decoding process records: exec, fork, exit. Each also updates the
process cache, in ring-buffer order, before the document is built."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .documents import path_fields

if TYPE_CHECKING:
    from .decode import Decoder, Document


def register(dec: Decoder) -> None:
    c = dec.layout.const
    dec.register(c("RS_EVENT_EXEC"), "exec", lambda d, s: decode_exec(dec, d, s))
    dec.register(c("RS_EVENT_FORK"), "fork", lambda d, s: decode_fork(dec, d, s))
    dec.register(c("RS_EVENT_EXIT"), "exit", lambda d, s: decode_exit(dec, d, s))


def decode_exec(dec: Decoder, data: Any, size: int) -> Document:
    e = dec.ffi.cast("struct rs_exec_event *", data)
    env = dec.env
    task = dec.task(e.proc)
    file = dec.file(data, size, e.file)
    argv_raw = dec.bytes_at(data, size, e.argv)
    argv = [a.decode("utf-8", "backslashreplace") for a in argv_raw.split(b"\0")]
    if argv and argv[-1] == "":
        argv.pop()
    truncated = bool(e.args_flags & dec.layout.const("RS_ARGS_TRUNCATED"))
    interp_raw = dec.bytes_at(data, size, e.interp)
    interp = path_fields(interp_raw, {}) if interp_raw else None
    env.processes.on_exec(
        e.hdr.pid,
        env.clock.to_epoch(e.hdr.timestamp),
        comm=task.comm,
        file=file,
        argv=argv,
        args_truncated=truncated,
        interpreter=interp,
    )
    doc = dec.envelope("exec", e.hdr, task)
    doc["exec"] = {k: v for k, v in doc["process"].items() if k != "ancestors"}
    return doc


def decode_fork(dec: Decoder, data: Any, size: int) -> Document:
    e = dec.ffi.cast("struct rs_fork_event *", data)
    env = dec.env
    env.processes.on_fork(e.child_pid, e.parent_pid, env.clock.to_epoch(e.child_start_time))
    doc = dec.envelope("fork", e.hdr, dec.task(e.proc), pid=e.child_pid)
    doc["process"]["ppid"] = e.parent_pid
    doc["fork"] = {"parent_pid": e.parent_pid, "child_pid": e.child_pid}
    return doc


def decode_exit(dec: Decoder, data: Any, size: int) -> Document:
    e = dec.ffi.cast("struct rs_exit_event *", data)
    status = int(e.exit_code)
    doc = dec.envelope("exit", e.hdr, dec.task(e.proc))
    dec.env.processes.on_exit(e.hdr.pid, doc["timestamp"], status)
    doc["exit"] = exit_fields(status)
    return doc


def exit_fields(status: int) -> Document:
    """``exit.code``/``exit.cause`` from a wait status, as the reference does:
    EXITED with the exit code, or SIGNALED/COREDUMPED with the signal number."""
    sig = status & 0x7F
    if sig == 0:
        return {"cause": "EXITED", "code": (status >> 8) & 0xFF}
    return {"cause": "COREDUMPED" if status & 0x80 else "SIGNALED", "code": sig}

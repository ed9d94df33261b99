"""Resolving the kernel event types: load_module, unload_module, bpf, mmap,
mprotect, io_uring (struct rs_module_event, rs_bpf_event, rs_mem_event,
rs_io_uring_event). Field names follow the event-type table
(codegen/eventtypes.py), which follows the reference agent's SECL where it
has the field.

What the kernel side reads from where (kernel objects or the caller's
memory) is in each hook's header (ebpf/hooks/module.h, bpf.h, mem.h,
io_uring.h); the flags of each record say which, and the documents keep
only what is known: a field the kernel could not read is absent (its
SECL value is then its type's zero), never a made-up zero.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..paths import resolve_user_path
from .decode import BpfRecord, FileObj, IoUringRecord, MemRecord, ModuleRecord
from .documents import path_fields
from .layout import layout

if TYPE_CHECKING:
    from .resolve import Document, Resolver

_L = layout()
_c = _L.const
MOD_FROM_MEMORY = _c("RS_MOD_FROM_MEMORY")
MOD_ARGS_TRUNCATED = _c("RS_MOD_ARGS_TRUNCATED")
BPF_PROG = _c("RS_BPF_PROG")
BPF_MAP = _c("RS_BPF_MAP")
BPF_PROG_KERNEL = _c("RS_BPF_PROG_KERNEL")
BPF_MAP_KERNEL = _c("RS_BPF_MAP_KERNEL")
BPF_HELPERS = _c("RS_BPF_HELPERS")
BPF_HELPERS_TRUNCATED = _c("RS_BPF_HELPERS_TRUNCATED")
BPF_HELPERS_OTHER = _c("RS_BPF_HELPERS_OTHER")
MEM_VMA = _c("RS_MEM_VMA")
MEM_VMA_PRECISE = _c("RS_MEM_VMA_PRECISE")
IOU_SETUP = _c("RS_IOU_SETUP")
IOU_SUBMIT = _c("RS_IOU_SUBMIT")
ACTIONS = {IOU_SETUP: "setup", IOU_SUBMIT: "submit"}


class KernelEventResolver:
    """One record of a kernel event type -> one document."""

    def __init__(self, res: Resolver) -> None:
        self.res = res

    def _file(self, f: FileObj) -> Document | None:
        return self.res.file(f) if f.path or f.inode else None

    # -- load_module, unload_module -------------------------------------------
    def module(self, e: ModuleRecord) -> Document:
        doc = self.res.envelope(e.hdr, e.task)
        body: Document = {"name": e.name, "retval": e.retval}
        if e.hdr.type == "load_module":
            args = e.args.decode("utf-8", "backslashreplace")
            body.update(
                loaded_from_memory=bool(e.mod_flags & MOD_FROM_MEMORY),
                args=args,
                argv=args.split(),
                args_truncated=bool(e.mod_flags & MOD_ARGS_TRUNCATED),
                flags=e.flags,
            )
            file = self._file(e.file)
            if file is not None:
                body["file"] = file
        else:
            body["flags"] = e.flags
        doc[e.hdr.type] = body
        return doc

    # -- bpf -------------------------------------------------------------------
    def bpf(self, e: BpfRecord) -> Document:
        doc = self.res.envelope(e.hdr, e.task)
        body: Document = {"cmd": e.cmd, "retval": e.retval}
        if e.bpf_flags & BPF_PROG:
            prog: Document = {"type": e.prog_type, "name": e.prog_name, "attach_type": e.prog_attach_type,
                              "source": "kernel" if e.bpf_flags & BPF_PROG_KERNEL else "user"}
            if e.bpf_flags & BPF_PROG_KERNEL:
                prog["id"] = e.prog_id
                prog["tag"] = e.prog_tag.hex()
            if e.bpf_flags & BPF_HELPERS:
                prog["helpers"] = list(e.helpers)
                prog["insn_count"] = e.insn_cnt
                if e.bpf_flags & (BPF_HELPERS_TRUNCATED | BPF_HELPERS_OTHER):
                    prog["helpers_truncated"] = True
            body["prog"] = prog
        if e.bpf_flags & BPF_MAP:
            m: Document = {"type": e.map_type, "name": e.map_name,
                           "source": "kernel" if e.bpf_flags & BPF_MAP_KERNEL else "user"}
            if e.bpf_flags & BPF_MAP_KERNEL:
                m["id"] = e.map_id
            body["map"] = m
        doc["bpf"] = body
        return doc

    # -- mmap, mprotect ----------------------------------------------------------
    def mem(self, e: MemRecord) -> Document:
        doc = self.res.envelope(e.hdr, e.task)
        body: Document = {"retval": e.retval, "address": e.addr, "length": e.length}
        if e.hdr.type == "mmap":
            body.update(protection=e.prot, flags=e.flags, fd=e.fd)
        else:
            body["req_protection"] = e.prot
            if e.mem_flags & MEM_VMA:
                body["vm_protection"] = e.vm_flags
                body["vm_source"] = "security_file_mprotect" if e.mem_flags & MEM_VMA_PRECISE else "find_vma"
            if e.pkey >= 0:
                body["pkey"] = e.pkey
        file = self._file(e.file)
        if file is not None:
            body["file"] = file
        doc[e.hdr.type] = body
        return doc

    # -- io_uring ----------------------------------------------------------------
    def io_uring(self, e: IoUringRecord) -> Document:
        doc = self.res.envelope(e.hdr, e.task)
        action = ACTIONS.get(e.action, str(e.action))
        body: Document = {"action": action, "op": e.op, "flags": e.flags, "retval": e.retval}
        if e.action == IOU_SETUP:
            body["entries"] = e.entries
        else:
            body["user_data"] = e.user_data
        if e.req_path:
            # an open request: the kernel's copy of its path, from the
            # kernel-walked directory it starts at (no object yet: the
            # request has not run)
            path = resolve_user_path(e.root or b"/", e.base.path or b"/", e.req_path, follow_last=True)
            body["file"] = path_fields(path, {"path_source": "user"})
            body["dfd"] = e.dfd
        doc["io_uring"] = body
        return doc


__all__ = ["KernelEventResolver"]
